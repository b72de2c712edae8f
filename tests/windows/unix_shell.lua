-- unix_shell: under wine, the specs' helpers run their shell commands (peers, openssl,
-- python, kill) on the Linux side of the machine. A Windows Lua's os.execute and
-- io.popen hand commands to cmd.exe, which knows no `sh`; these replacements write the
-- command into a script and start it with wine's `start /unix /bin/sh`, then wait for
-- the exit code the script leaves behind. Paths stay Unix paths: the specs run with the
-- current directory on wine's Z: drive, where "/tmp/x" names the same file on both sides.
if package.loaded.unix_shell then return package.loaded.unix_shell end   -- LUA_INIT ran it
local M = {}
package.loaded.unix_shell = M

local n = 0
-- the Unix directory the stage started wine in (wine sets PWD to its own): relative
-- paths in commands start there
local cwd = os.getenv("SLUICE_UNIX_CWD")
-- Unique per process: wine starts Lua at the same addresses, so two processes
-- started in the same second draw the same random numbers; the stage and lua.sh
-- give each one the id of the Unix shell that started it.
local prefix = string.format("/tmp/sluice-wsh.%s.%d.%d.", os.getenv("SLUICE_WSH_ID") or "x", os.time(),
  math.random(1, 1e9))

local function wait_ms(ms)   -- only the net module can sleep in a Windows Lua
  require("net").wait(ms)
end

-- Polls for the file rc for up to ms; its open handle, or nil.
local function poll_rc(rc, ms)
  for _ = 1, ms // 2 do
    local r = io.open(rc, "rb")
    if r then return r end
    wait_ms(2)
  end
end

-- Starts script with wine's `start /unix` (which returns at once) and waits for the
-- exit code it leaves in rc. Under load `start` now and then fails to launch it
-- ("File not found."): it is started again, unless it ran after all.
local function start_and_wait(script, rc)
  for attempt = 1, 4 do
    if M.cmd_execute("start /unix /bin/sh " .. script) then return poll_rc(rc, 120000) end
    local r = poll_rc(rc, 250 * attempt)
    if r then return r end
  end
end

-- Runs sh command `cmd`; its stdout goes to `out` (a path) when given, else nowhere.
-- Returns the exit code.
local function run(cmd, out)
  n = n + 1
  local script, rc = prefix .. n .. ".sh", prefix .. n .. ".rc"
  local f = assert(io.open(script, "wb"))
  local cd = cwd and ("cd '" .. cwd:gsub("'", "'\\''") .. "' || exit 127\n") or ""
  f:write(cd, "(\n", cmd, "\n) </dev/null", out and (" >" .. out) or " >/dev/null", "\n",
    "echo $? >", rc, ".tmp && mv ", rc, ".tmp ", rc, "\n")
  f:close()
  local r = start_and_wait(script, rc)
  os.remove(script)
  if not r then return 127 end
  local code = r:read("n")
  r:close()
  os.remove(rc)
  return code or 127
end

local function execute(cmd)
  if cmd == nil then return true end   -- "is there a shell?"
  local code = run(cmd)
  if code == 0 then return true, "exit", 0 end
  return nil, "exit", code
end

-- A read-only file over a string: what io.popen's handle needs to do here.
local function string_file(data, code)
  local pos, f = 1, {}
  local function one(fmt)
    fmt = type(fmt) == "string" and fmt:gsub("^%*", "") or fmt
    if type(fmt) == "number" then
      if pos > #data and fmt > 0 then return nil end
      local s = data:sub(pos, pos + fmt - 1)
      pos = pos + #s
      return s
    elseif fmt == "a" then
      local s = data:sub(pos)
      pos = #data + 1
      return s
    elseif fmt == "n" then
      local s, e = data:find("^%s*[-+]?[%x.xXpPeE]+", pos)
      if not s then return nil end
      pos = e + 1
      return tonumber((data:sub(s, e):gsub("^%s+", "")))
    end
    if pos > #data then return nil end
    local e = data:find("\n", pos, true)
    local line = data:sub(pos, e and e - 1 or #data)
    pos = e and e + 1 or #data + 1
    return fmt == "L" and e and line .. "\n" or line
  end
  function f.read(_, ...)
    local fmts, res = table.pack(...), {}
    if fmts.n == 0 then return one("l") end
    for i = 1, fmts.n do
      res[i] = one(fmts[i])
      if res[i] == nil then return table.unpack(res, 1, i) end
    end
    return table.unpack(res, 1, fmts.n)
  end
  function f.lines(_, fmt) return function() return one(fmt or "l") end end
  function f.close() return code == 0 or nil, "exit", code end
  return f
end

-- io.popen for reading: the command runs to its end first, then its output is read.
-- (Background jobs inside it, like `peer & echo $!`, keep running.)
local function popen(cmd, mode)
  assert(mode == nil or mode:match("^r"), "unix_shell: io.popen supports reading only")
  n = n + 1
  local out = prefix .. n .. ".out"
  local code = run(cmd, out)
  local f = io.open(out, "rb")
  local data = f and f:read("a") or ""
  if f then f:close() end
  os.remove(out)
  return string_file(data, code)
end

local function tmpname()
  n = n + 1
  local name = prefix .. n .. ".tmp"
  local f = assert(io.open(name, "wb"))
  f:close()
  return name
end

-- The C runtime has room for about 500 open files; specs that leave files to the
-- garbage collector (harmless under Linux's larger limit) get a collection first.
local function open_collecting(open)
  return function(...)
    local f, err, code = open(...)
    if f or code == 2 then return f, err, code end   -- ENOENT: no retry
    collectgarbage()
    f = open(...)
    if f then return f end
    return nil, err, code
  end
end

function M.install()
  if package.config:sub(1, 1) ~= "\\" or M.cmd_execute then return end   -- a Unix Lua needs none
  M.cmd_execute = os.execute
  os.execute, io.popen, os.tmpname = execute, popen, tmpname
  io.open = open_collecting(io.open)
end

-- Also run as LUA_INIT, so child Lua processes get it before their script.
M.install()
return M
