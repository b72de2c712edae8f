-- json: decode and encode speed of net.json_decode / net.json_encode next to
-- lua-cjson (Debian's lua-cjson) on three realistic documents: a language
-- server's completion response, a package manifest with a lock section, and
-- a big array of numbers (integers and decimals). Prints MB/s (of JSON text)
-- and the ratio of our time to cjson's (below 2 is the target). Never asserts on time.
--
--   lua5.4 tests/bench/json.lua [ROUNDS]    (default 15; the median is shown)
-- Environment: LUA_CPATH (net.so).
local net = require "net"
local ok_cjson, cjson = pcall(require, "cjson")

local ROUNDS = math.tointeger(tonumber(arg and arg[1] or "15")) or 15

-- A deterministic pseudo-random generator, so every run sees the same documents.
local seed = 12345
local function rnd(n)
  seed = (seed * 1103515245 + 12345) % 2147483648
  return seed % n
end
local words = { "buffer", "string", "table", "insert", "format", "connection", "status",
  "réseau", "données", "wait", "clock", "resolve", "address", "server", "accept", "socket" }
local function word() return words[rnd(#words) + 1] end
local function sentence(n)
  local t = {}
  for i = 1, n do t[i] = word() end
  return table.concat(t, " ")
end

local function completion(items)
  local list = {}
  for i = 1, items do
    local name = word() .. "_" .. i
    list[i] = {
      label = name, kind = rnd(25) + 1, detail = "fun(" .. word() .. ": string): " .. word(),
      documentation = { kind = "markdown",
        value = "```lua\nfunction " .. name .. "()\n```\n\n" .. sentence(20) .. "\n\n@param x `" .. word() .. "`" },
      sortText = string.format("%04d", i), filterText = name, insertTextFormat = 2,
      textEdit = { range = { start = { line = rnd(5000), character = rnd(80) },
                             ["end"] = { line = rnd(5000), character = rnd(80) } },
                   newText = name .. "(${1:" .. word() .. "})" },
      data = { uri = "file:///home/user/project/src/" .. word() .. ".lua", id = rnd(1 << 30) },
      deprecated = rnd(10) == 0,
    }
  end
  return { jsonrpc = "2.0", id = 42, result = { isIncomplete = false, items = list } }
end

local function manifest(deps)
  local d, lock = {}, {}
  for i = 1, deps do
    local name = "@scope/" .. word() .. "-" .. i
    local v = string.format("%d.%d.%d", rnd(10), rnd(30), rnd(100))
    d[name] = "^" .. v
    lock[name] = { version = v, resolved = "https://registry.example.org/" .. name .. "/-/" .. v .. ".tgz",
      integrity = "sha512-" .. string.rep(string.char(65 + rnd(26)), 86) .. "==",
      dev = rnd(3) == 0, requires = { [word()] = "^1.0." .. rnd(9), [word() .. "x"] = "~2." .. rnd(9) } }
  end
  return { name = "sluice-demo", version = "1.4.2", description = sentence(30), private = true,
    scripts = { build = "make -j2", test = "./run.sh test", lint = "luacheck ." },
    keywords = { "network", "lua", "editor", "polling" }, dependencies = d, packages = lock }
end

local function numbers(n)
  local t = {}
  for i = 1, n do
    if i % 2 == 0 then t[i] = rnd(1000000) - 500000
    else t[i] = (rnd(2000000) - 1000000) / 1000 end   -- coordinates: 3 decimals
  end
  return t
end

local docs = {
  { "lsp completion", completion(3000) },
  { "package manifest", manifest(2000) },
  { "number array", numbers(200000) },
}

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

-- Median seconds of fn(arg) over ROUNDS runs (after one warm-up run).
local function time(fn, a)
  fn(a)
  local t = {}
  for i = 1, ROUNDS do
    collectgarbage()
    local t0 = net.clock()
    fn(a)
    t[i] = net.clock() - t0
  end
  return median(t)
end

print(string.format("json: median of %d rounds; MB/s of JSON text; ratio = sluice time / cjson time (target < 2)", ROUNDS))
if not ok_cjson then print("  (lua-cjson not installed: install lua-cjson for the comparison)") end
print(string.format("  %-18s %9s %12s %12s %7s %12s %12s %7s", "document", "KiB",
  "dec sluice", "dec cjson", "ratio", "enc sluice", "enc cjson", "ratio"))
for _, d in ipairs(docs) do
  local name, doc = d[1], d[2]
  local text = assert(net.json_encode(doc))
  assert(net.json_encode(assert(net.json_decode(text))) ~= nil)
  local mb = #text / 1e6
  local ds = time(net.json_decode, text)
  local es = time(net.json_encode, doc)
  local dc, ec = 0 / 0, 0 / 0
  if ok_cjson then
    local ctext = cjson.encode(doc)
    dc = time(cjson.decode, ctext)
    ec = time(cjson.encode, doc)
  end
  print(string.format("  %-18s %9d %12.1f %12.1f %7.2f %12.1f %12.1f %7.2f", name, #text // 1024,
    mb / ds, mb / dc, ds / dc, mb / es, mb / ec, es / ec))
end
