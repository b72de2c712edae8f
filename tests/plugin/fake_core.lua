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
-- and adds what a test needs to drive it: fake.frame(), fake.run_until(pred, timeout_s),
-- and a model of Lite XL 2.1.7's main loop, fake.run_editor(pred, opts): its
-- run_threads (with the frame budget), core.step (events, update, redraw only when
-- core.redraw) and core.run, which, when the window is unfocused and the threads
-- finished twice in a row without a redraw, waits for the next event with no timeout.
-- The global `system` it installs waits for events through the SDL stub the test host
-- preloaded (xl_host.sdl_wait), the way the editor waits in SDL_WaitEventTimeout; with
-- no SDL to wake it, a wait with no timeout is where the real editor stalls for good,
-- and the model fails it.
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

  -- One pass over the threads, as run_threads of Lite XL 2.1.7: resumes those
  -- due, and calls after_each() after each (the frame-time cut, or nothing).
  -- Returns the time to the next wake-up (seconds).
  local function run_due_threads(after_each)
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
      if after_each then after_each() end
    end
    return min_wake
  end
  fake.run_due_threads = run_due_threads

  -- One frame (without the frame-time cut).
  function fake.frame() return run_due_threads() end

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
  fake.install_loop(core, config, clock, sleep)
  fake.saved_system, _G.system = _G.system, fake.system
  return core
end

-- The editor's main loop, for fake.run_editor. State lives in `fake.loop`.
function fake.install_loop(core, config, clock, sleep)
  local loop = { focused = true, stall_after = 10, draws = 0, steps = 0, events = 0, infinite_waits = 0 }
  fake.loop = loop
  config.blink_period = 0.8
  core.blink_start, core.blink_timer = clock(), clock()

  local system = { get_time = clock }
  function system.window_has_focus() return loop.focused end
  function system.sleep(s) if s > 0 then sleep(s) end end
  -- SDL_WaitEventTimeout: true when an event came within `timeout` (nil: no limit).
  function system.wait_event(timeout)
    local sdl = xl_host and xl_host.sdl_wait
    if timeout == nil then loop.infinite_waits = loop.infinite_waits + 1 end
    if not sdl then
      if timeout == nil then
        error("the editor waits for an event with no timeout and nothing can wake it: stalled", 0)
      end
      sleep(math.max(0, timeout))
      return false
    end
    local ms = timeout and math.max(0, math.floor(timeout * 1000)) or math.floor(loop.stall_after * 1000)
    local got = sdl(ms)
    if not got and timeout == nil then
      error(string.format("the editor waited %g s for an event that never came: stalled", loop.stall_after), 0)
    end
    if got then loop.events = loop.events + 1 end
    return got
  end
  fake.system = system

  -- run_threads of data/core/init.lua: yields (time to wake, finished all in budget)
  local run_threads = coroutine.wrap(function()
    while true do
      local max_time = 1 / config.fps - 0.004
      local wake = fake.run_due_threads(function()
        if clock() - core.frame_start > max_time then coroutine.yield(0, false) end
      end)
      coroutine.yield(wake, true)
    end
  end)

  -- core.step: the active view is an empty view (no caret blinks): only
  -- core.redraw makes a frame. Unknown events (ours) are dropped.
  function core.step()
    loop.steps = loop.steps + 1
    if loop.blink then
      local T, t0, ta, tb = config.blink_period, core.blink_start, core.blink_timer, clock()
      if ((tb - t0) % T < T / 2) ~= ((ta - t0) % T < T / 2) then core.redraw = true end
      core.blink_timer = tb
    end
    if not core.redraw then return false end
    core.redraw = false
    loop.draws = loop.draws + 1
    return true
  end

  -- One turn of core.run; `st` carries next_step, last_frame_time, run_threads_full.
  local function turn(st)
    core.frame_start = clock()
    local time_to_wake, threads_done = run_threads()
    if threads_done then st.full = st.full + 1 end
    local did_redraw, did_step = false, false
    local force_draw = core.redraw and st.last_frame and core.frame_start - st.last_frame > (1 / config.fps)
    if force_draw or not st.next_step or clock() >= st.next_step then
      if core.step() then
        did_redraw = true
        st.last_frame = core.frame_start
      end
      st.next_step, did_step = nil, true
    end
    if not did_redraw then
      if system.window_has_focus() or not did_step or st.full < 2 then
        local now = clock()
        if not st.next_step then
          local t = now - core.blink_start
          local hh = config.blink_period / 2
          st.next_step = now + (math.ceil(t / hh) * hh - t) + 1 / config.fps
        end
        if system.wait_event(math.min(st.next_step - now, time_to_wake)) then st.next_step = nil end
      elseif not st.pred() then   -- done: an idle editor may wait for ever
        system.wait_event()
        st.next_step = nil
      end
    else
      st.full = 0
      local now = clock()
      local next_frame = math.max(0, 1 / config.fps - (now - core.frame_start))
      st.next_step = st.next_step or (now + next_frame)
      system.sleep(math.min(next_frame, time_to_wake))
    end
  end

  -- Runs the editor's loop until pred() (true) or timeout_s (false); a stall
  -- raises. opts.focused (default false), opts.blink (an active document view).
  function fake.run_editor(pred, opts)
    opts = opts or {}
    loop.focused, loop.blink = opts.focused or false, opts.blink or false
    local st = { full = 0, pred = pred }
    local deadline = clock() + (opts.timeout or 60)
    while not pred() do
      if clock() > deadline then return false end
      turn(st)
    end
    return true
  end
end

function fake.uninstall()
  for _, name in ipairs { "core", "core.command", "core.config", "core.style" } do
    package.loaded[name] = nil
  end
  _G.system = fake.saved_system
end

return fake
