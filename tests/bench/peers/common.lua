-- common: what every peer's workloads share: the pacing sleep, process memory, call
-- recording and figures. The sleep of the frame loops is LuaSocket's (select() with no
-- descriptor): a frame's vsync wait, which lets no library do network work in it.
local socket = require "socket"

local W = {}

W.sleep = socket.sleep
W.FRAME = 1 / 60
W.MSG = string.rep("p", 64)

function W.fmt(v)
  if math.type(v) == "float" then return string.format("%.9g", v) end
  return tostring(v)
end

-- Resident memory of this process, bytes.
function W.rss()
  local f = assert(io.open("/proc/self/statm"))
  local _, resident = f:read("n", "n")
  f:close()
  return resident * 4096
end

-- Resident memory once a burst has settled: a library may give freed memory back a
-- moment later (sluice trims the heap within a second after its I/O thread idles).
-- Every peer waits the same, before and after its garbage collection.
W.SETTLE = 1.5
function W.settled_rss()
  W.sleep(W.SETTLE)
  collectgarbage()
  return W.rss()
end

-- Sorted copy's percentile p (0..1).
local function pct(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math.max(1, math.ceil(#sorted * p))]
end
W.pct = pct

-- Figures of a list of durations: prefix_mean, _p99, _p999, _max, _n. A percentile of
-- fewer samples than it needs (100, 1000) would be the worst one: "n/a".
function W.summary(list, prefix, into)
  into = into or {}
  table.sort(list)
  local sum = 0
  for i = 1, #list do sum = sum + list[i] end
  into[prefix .. "_n"] = #list
  into[prefix .. "_mean"] = #list > 0 and sum / #list or 0
  into[prefix .. "_p99"] = #list >= 100 and pct(list, 0.99) or "n/a"
  into[prefix .. "_p999"] = #list >= 1000 and pct(list, 0.999) or "n/a"
  into[prefix .. "_max"] = list[#list] or 0
  return into
end

-- A recorder of call durations: rec(clock_before, kind) appends clock() - clock_before;
-- worst.kind / worst.secs name the slowest call, worst.kinds[kind] lists each kind's.
function W.recorder(clock)
  local list, n = {}, 0
  local worst = { secs = -1, kind = "?", kinds = {} }
  local function rec(t0, kind)
    local d = clock() - t0
    n = n + 1
    list[n] = d
    kind = kind or "?"
    local k = worst.kinds[kind]
    if not k then k = {}; worst.kinds[kind] = k end
    k[#k + 1] = d
    if d > worst.secs then worst.secs, worst.kind = d, kind end
  end
  return rec, list, worst
end

-- The frame loop of the frame-budget scenario: calls step(frame) once per 1/60 s for
-- `frames` frames, sleeping out the rest of each frame; returns every frame's work
-- time (seconds). step returns true when everything is done (the loop goes on: the
-- scenario's length is its frame count).
-- W.noise_max: the longest of 100 timed empty calls per frame, the machine's floor
-- (preemption while the servers and other work share the cores), not the library's.
local function noop() end
W.noise_max = 0

function W.frame_loop(clock, frames, step)
  local times = {}
  local next_t = clock()
  for f = 1, frames do
    local t0 = clock()
    step(f)
    local t1 = clock()
    times[f] = t1 - t0
    for _ = 1, 100 do
      local n0 = clock()
      noop()
      local d = clock() - n0
      if d > W.noise_max then W.noise_max = d end
    end
    next_t = next_t + W.FRAME
    local left = next_t - clock()
    if left > 0 then W.sleep(left) else next_t = clock() end
  end
  return times
end

-- Fills `res` with the frame-budget figures.
function W.frame_figures(res, calls, frames, worst)
  W.summary(calls, "call", res)
  if worst then
    res.worst_call = (worst.kind:gsub("%s", "_"))
    -- each kind of call: count, p99.9, worst, and how many took over 5 and 50 µs
    for kind, list in pairs(worst.kinds) do
      local key = "kind_" .. kind:gsub("[^%w]", "_")
      W.summary(list, key, res)
      local over5, over50 = 0, 0
      for _, d in ipairs(list) do
        if d > 5e-6 then over5 = over5 + 1 end
        if d > 50e-6 then over50 = over50 + 1 end
      end
      res[key .. "_over5us"], res[key .. "_over50us"] = over5, over50
    end
  end
  res.noise_max = W.noise_max
  local over = 0
  for i = 1, #frames do if frames[i] > W.FRAME then over = over + 1 end end
  W.summary(frames, "frame", res)
  res.frames_over = over
  return res
end

return W
