-- json_spec: net.json_encode / net.json_decode: RFC 8259 round trips, the
-- array/object rule, numbers (integers stay integers), strings (escapes, UTF-8 both
-- ways), net.json_null, limits, and errors with a byte position or a key path.
package.path = (debug.getinfo(1, "S").source:match("^@(.*[/\\])") or "./") .. "?.lua;" .. package.path
local net = require "net"
local E, D = net.json_encode, net.json_decode

local function fails(pattern, ...)
  local r, err, code = ...
  assert.is_nil(r)
  assert.is_string(err)
  assert.is_truthy(err:find(pattern), err)
  assert.is_truthy(code == "invalid" or code == "limit", tostring(code))
end

describe("json", function()
  it("decodes every kind of value", function()
    local v = assert(D(' {"a": [1, -2, 3.5, 1e2, -0.25E-1, true, false, null], "b": {"c": "d"}, "e": []} '))
    assert.are.same({ 1, -2, 3.5, 100.0, -0.025, true, false, net.json_null }, v.a)
    assert.are.same({ c = "d" }, v.b)
    assert.are.equal(0, #v.e)
    assert.are.equal(net.json_null, D("null"))
    assert.are.equal("x", D('"x"'))
  end)

  it("keeps integers integers and floats floats", function()
    assert.are.equal("integer", math.type(D("42")))
    assert.are.equal("integer", math.type(D("-9223372036854775808")))
    assert.are.equal(math.maxinteger, D("9223372036854775807"))
    assert.are.equal("float", math.type(D("9223372036854775808")))   -- too big: a float
    assert.are.equal("float", math.type(D("1.0")))
    assert.are.equal("float", math.type(D("1e0")))
    assert.are.equal("1", E(1))
    assert.are.equal("1.0", E(1.0))
    assert.are.equal("-0.0", E(-0.0))
    assert.are.equal("0.1", E(0.1))
    for _, x in ipairs { 1 / 3, math.pi, 1e300, 5e-324, -123456.789, 2 ^ 53 + 0.0, 0.1 + 0.2 } do
      local back = D(E(x))
      assert.are.equal(x, back)
      assert.are.equal("float", math.type(back))
    end
    for _, i in ipairs { 0, -1, math.maxinteger, math.mininteger, 2 ^ 53 | 1 } do
      assert.are.equal(i, D(E(i)))
      assert.are.equal("integer", math.type(D(E(i))))
    end
    assert.are.equal(1.2345678901234567e-5, D("1.2345678901234567e-5"))
    assert.are.equal(0.1, D("0.1000000000000000055511151231257827"))
  end)

  it("escapes strings and checks UTF-8 both ways", function()
    local s = "q\" b\\ /\b\f\n\r\t\0\31\127 é😀"
    assert.are.equal('"q\\" b\\\\ /\\b\\f\\n\\r\\t\\u0000\\u001f\127 é😀"', E(s))
    assert.are.equal(s, D(E(s)))
    assert.are.equal("é😀/", D('"\\u00e9\\ud83d\\ude00\\/"'))
    fails("not valid UTF%-8 %(byte 3%) at %$%.k", E({ k = "ab\xff" }))
    fails("not valid UTF%-8", E("\xc0\x80"))   -- overlong
    fails("not valid UTF%-8", E("\xed\xa0\x80"))   -- a surrogate
    fails("invalid UTF%-8 in a string at byte 3", D('"a\xf5\x80\x80\x80"'))
    fails("invalid UTF%-8", D('"\xe2\x82"'))   -- cut short
    fails("lone high surrogate", D('"\\ud83d x"'))
    fails("lone low surrogate", D('"\\ude00"'))
    fails("control character in a string", D('"a\nb"'))
    fails("bad escape", D('"\\x41"'))
    fails("bad \\u escape", D('"\\u12g4"'))
    fails("unterminated string", D('"abc'))
  end)

  it("decides arrays and objects by a fixed rule", function()
    assert.are.equal("[1,2,3]", E({ 1, 2, 3 }))
    assert.are.equal('{"a":1}', E({ a = 1 }))
    assert.are.equal("{}", E({}))                              -- empty: an object ...
    assert.are.equal("[]", E(setmetatable({}, net.json_array_mt)))   -- ... unless marked
    assert.are.equal("[]", E(setmetatable({}, { __jsontype = "array" })))
    assert.are.equal("{}", E(D("{}")))
    assert.are.equal("[]", E(D("[]")))                         -- decoded [] stays an array
    assert.are.equal('{"1":"a"}', E(setmetatable({ ["1"] = "a" }, { __jsontype = "object" })))
    assert.are.equal("[1,null,3]", E({ 1, net.json_null, 3 }))
    fails("sparse array: index 2 of 1..3 is nil %(use net.json_null%)", E({ 1, nil, 3 }))
    fails("sparse array", E({ [2] = "x" }))
    fails("mixes string keys and number keys %(x and %d%)", E({ 1, 2, x = 3 }))
    fails("key 1.5 is not a positive integer", E({ [1.5] = 1 }))
    fails("key 2.5 is not a positive integer", E({ 10, 20, [2.5] = 3 }))   -- the bad key, not the first
    fails("key %-1 is not a positive integer", E({ 10, 20, [-1] = 0 }))
    fails("table key of type boolean", E({ 10, 20, [false] = 0 }))
    fails("table key of type boolean", E({ [true] = 1 }))
    fails("marked as an array has the string key 'a'", E(setmetatable({ a = 1 }, net.json_array_mt)))
    fails("marked as an object has the number key 1", E(setmetatable({ 1, 2 }, { __jsontype = "object" })))
  end)

  it("refuses what JSON cannot say, naming where", function()
    local t = { params = { list = { 1, { cb = print } } } }
    fails("cannot encode a function at %$%.params%.list%[2%]%.cb", E(t))
    local c = { a = {} }
    c.a.back = c
    fails("refers to itself %(a cycle%) at %$%.a%.back", E(c))
    fails("cannot encode NaN", E({ 0 / 0 }))
    fails("infinite", E(math.huge))
    fails("cannot encode a userdata", E(io.stdout))
    fails("cannot encode a thread", E(coroutine.create(print)))
    assert.are.equal("null", E(nil))
  end)

  it("reports bad text with its byte position", function()
    fails("unexpected end of text, expected ',' or ']' at byte 5", D("[1,2"))
    fails("unexpected '1', expected ':' at byte 6", D('{"a" 1}'))
    fails("unexpected '}', expected a string key at byte 8", D('{"a":1,}'))
    fails("expected the end of the text at byte 3", D("1 2"))
    fails("at byte 2", D("01"))
    fails("a digit after '.'", D("1."))
    fails("a digit in the exponent", D("1e+"))
    fails("expected a value at byte 1", D(""))
    fails("expected a value", D("nul"))
    fails("expected a value", D("NaN"))
    fails("number out of range", D("1e999"))
    -- an exponent of many digits with a fraction as long: out of range still, not a finite guess
    fails("number out of range", D("0." .. ("0"):rep(99999) .. "1e1000000"))
    assert.are.equal(1.0, D("0." .. ("0"):rep(99999) .. "1e100000"))
    assert.has_error(function() D(42) end)
    assert.has_error(function() D() end)
  end)

  it("has depth and size limits", function()
    fails("nesting deeper than 1000", D(string.rep("[", 1001) .. string.rep("]", 1001)))
    assert.is_table(D(string.rep("[", 1000) .. string.rep("]", 1000)))
    fails("nesting deeper than 3", D("[[[[1]]]]", { max_depth = 3 }))
    local deep = {}
    for _ = 1, 1001 do deep = { deep } end
    fails("nesting deeper than 1000", E(deep))
    local r, err, code = D("[1,2,3]", { max_size = 3 })
    assert.is_nil(r)
    assert.are.equal("limit", code)
    assert.is_truthy(err:find("max_size"))
    fails("exceed max_size 10 bytes", E(string.rep("x", 20), { max_size = 10 }))
    assert.are.equal("limit", select(3, E(string.rep("x", 20), { max_size = 10 })))   -- as decoding says it
    assert.are.equal("invalid", select(3, E(function() end)))   -- a value it cannot encode
    assert.are.equal("invalid", select(3, D("[1,]")))            -- text that is not JSON
    -- the cap holds for every write, not only those that grow the buffer
    local ints = {}
    for i = 1, 120 do ints[i] = i end
    fails("exceed max_size 300 bytes", E(ints, { max_size = 300 }))
    local text = E(ints)
    assert.are.equal(text, E(ints, { max_size = #text }))        -- exactly at the cap
    fails("exceed max_size", E(ints, { max_size = #text - 1 }))
    local esc = string.rep('a"\n\1', 50)
    local etext = E(esc)
    assert.are.equal(etext, E(esc, { max_size = #etext }))
    fails("exceed max_size", E(esc, { max_size = #etext - 1 }))
    assert.has_error(function() E(1, { max_depth = 0 }) end)
    assert.has_error(function() D("1", { nope = 1 }) end)
  end)

  it("round-trips a language-server message", function()
    local msg = { jsonrpc = "2.0", id = 7, result = { items = {
      { label = "print", kind = 3, textEdit = { range = { start = { line = 0, character = 4 } }, newText = "print()" } },
      { label = "pairs", deprecated = false, data = net.json_null } } } }
    assert.are.same(msg, D(E(msg)))
  end)
end)
