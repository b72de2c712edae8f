-- fake_core: a minimal stand-in for the parts of Lite XL 2.1's editor core that
-- plugin/sluice.lua uses, for tests/plugin/editor_spec.lua. It installs the
-- modules "core", "core.command", "core.config" and "core.style" into
-- package.loaded and mirrors, from Lite XL 2.1.7's data/core:
--   core.add_thread(f, weak_ref, ...)  threads run through core.try; a thread
--       yields a number of seconds to sleep, or nothing to run again next frame
--       (run_threads in core/init.lua)
--   core.try, core.log, core.log_quiet, core.warn, core.error
--   core.open_doc([filename]) -> a Doc with insert(line, col, text), get_text()
--   core.root_view:open_doc(doc), core.status_view:show_message(icon, color, text)
--   core.command_view:enter(label, options)  options.submit / validate (the
--       2.1 table form); :submit(text) plays the user pressing return
--   command.add(predicate, map), command.perform(name, ...)
--   config.plugins (a table of per-plugin tables, created on first access)
-- and adds what a test needs to drive it: fake.frame(), fake.run_until(pred, timeout_s).
local fake = {}

function fake.install(opts)
  opts = opts or {}
  local clock = assert(opts.clock, "fake_core.install: opts.clock (seconds) is required")
  local sleep = assert(opts.sleep, "fake_core.install: opts.sleep(seconds) is required")

  local core = { threads = {}, docs = {}, log_items = {}, errors = {} }
  local thread_counter = 0

  local function log(level, fmt, ...)
    local text = string.format(fmt, ...)
    core.log_items[#core.log_items + 1] = { level = level, text = text }
    if level == "ERROR" then core.errors[#core.errors + 1] = text end
    return text
  end
  function core.log(...) return log("INFO", ...) end
  function core.log_quiet(...) return log("INFO", ...) end
  function core.warn(...) return log("WARN", ...) end
  function core.error(...) return log("ERROR", ...) end

  function core.try(fn, ...)
    local err
    local ok, res = xpcall(fn, function(msg)
      err = msg
      return debug.traceback(tostring(msg), 2)
    end, ...)
    if ok then return true, res end
    core.error("%s", tostring(res))
    return false, err
  end

  function core.add_thread(f, weak_ref, ...)
    local key = weak_ref
    if not key then
      thread_counter = thread_counter + 1
      key = thread_counter
    end
    assert(core.threads[key] == nil, "Duplicate thread reference")
    local args = table.pack(...)
    local fn = function() return core.try(f, table.unpack(args, 1, args.n)) end
    core.threads[key] = { cr = coroutine.create(fn), wake = 0 }
    return key
  end

  -- Doc: the text is kept as one string; lines are counted from 1, columns too.
  local Doc = {}
  Doc.__index = Doc
  function Doc:get_text() return self.text end
  function Doc:insert(line, col, text)
    local pos, l = 1, 1
    while l < line do
      local e = self.text:find("\n", pos, true)
      if not e then pos = #self.text + 1; break end
      pos, l = e + 1, l + 1
    end
    pos = math.min(pos + col - 1, #self.text + 1)
    self.text = self.text:sub(1, pos - 1) .. text .. self.text:sub(pos)
  end
  function core.open_doc(filename)
    local doc = setmetatable({ filename = filename, text = "" }, Doc)
    core.docs[#core.docs + 1] = doc
    return doc
  end

  core.root_view = { opened = {} }
  function core.root_view:open_doc(doc)
    self.opened[#self.opened + 1] = doc
    return { doc = doc }
  end

  core.status_view = { messages = {} }
  function core.status_view:show_message(icon, color, text)
    self.messages[#self.messages + 1] = { icon = icon, color = color, text = text }
  end

  core.command_view = {}
  function core.command_view:enter(label, options)
    assert(type(options) == "table", "CommandView:enter: 2.1 takes an options table")
    self.label, self.state = label, options
  end
  function core.command_view:submit(text)
    local state = assert(self.state, "the command view is not active")
    if state.validate and not state.validate(text) then return false end
    self.state = nil
    state.submit(text)
    return true
  end

  local command = { map = {} }
  function command.add(predicate, map)
    for name, fn in pairs(map) do command.map[name] = { predicate = predicate, perform = fn } end
  end
  function command.perform(name, ...)
    local cmd = command.map[name]
    if not cmd then return false end
    local ok = core.try(cmd.perform, ...)
    return ok
  end

  local plugins = setmetatable({}, { __index = function(t, k)
    local v = {}
    rawset(t, k, v)
    return v
  end })
  local config = { plugins = plugins, fps = 60, message_timeout = 5 }
  local style = { text = { 230, 230, 230, 255 }, accent = { 225, 225, 230, 255 }, dim = { 150, 150, 150, 255 } }

  package.loaded["core"] = core
  package.loaded["core.command"] = command
  package.loaded["core.config"] = config
  package.loaded["core.style"] = style

  -- One frame: run_threads of Lite XL 2.1.7 (without the frame-time cut).
  -- Returns the time to the next wake-up (seconds).
  function fake.frame()
    local min_wake = math.huge
    local threads = {}
    for k, thread in pairs(core.threads) do threads[k] = thread end
    for k, thread in pairs(threads) do
      if core.threads[k] and thread.wake < clock() then
        local _, wait = assert(coroutine.resume(thread.cr))
        if coroutine.status(thread.cr) == "dead" then
          core.threads[k] = nil
        elseif wait then
          thread.wake = clock() + wait
          min_wake = math.min(min_wake, wait)
        else
          min_wake = 0
        end
      else
        min_wake = math.min(min_wake, thread.wake - clock())
      end
    end
    return min_wake
  end

  -- Runs frames until pred() is true (returns true) or timeout_s passed (returns
  -- false). Between frames it sleeps until the next wake-up, at most a frame.
  function fake.run_until(pred, timeout_s)
    local deadline = clock() + (timeout_s or 30)
    fake.frames = fake.frames or 0
    while true do
      if pred() then return true end
      if clock() > deadline then return false end
      local wake = fake.frame()
      fake.frames = fake.frames + 1
      if pred() then return true end
      sleep(math.max(0.001, math.min(wake, 1 / config.fps)))
    end
  end

  fake.core, fake.command, fake.config, fake.style = core, command, config, style
  return core
end

function fake.uninstall()
  for _, name in ipairs { "core", "core.command", "core.config", "core.style" } do
    package.loaded[name] = nil
  end
end

return fake
