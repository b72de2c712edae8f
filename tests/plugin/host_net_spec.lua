-- host_net_spec: the editor-side plugin (plugin/sluice.lua) over the editor's own
-- `net`, as in Pragtical, whose built-in module has the polled core API but no
-- set_wakeup. When neither libraries.sluice.net nor sluice.net can be found, the
-- plugin falls back to that module: it must load in the stand-in editor core
-- (tests/plugin/fake_core.lua) and say why there are no wake-ups.
local ROOT = os.getenv("SLUICE_ROOT") or "."

describe("editor plugin over the editor's own net", function()
  local fake
  local names = { "net", "plugins.sluice", "libraries.sluice.net", "sluice.net" }
  local saved, saved_path, saved_cpath, searchers = {}, nil, nil, nil

  setup(function()
    for _, name in ipairs(names) do saved[name] = package.loaded[name] end
    saved_path, saved_cpath, searchers = package.path, package.cpath, #package.searchers
    -- only data/ and the preset `net`: no native module can be found
    package.path = ROOT .. "/data/?.lua"
    package.cpath = ""
    package.loaded["libraries.sluice.net"], package.loaded["sluice.net"] = nil, nil
    fake = dofile(ROOT .. "/tests/plugin/fake_core.lua")
    fake.install { clock = os.clock, sleep = function() end }
  end)

  teardown(function()
    if fake then fake.uninstall() end
    for _, name in ipairs(names) do package.loaded[name] = saved[name] end
    package.path, package.cpath = saved_path, saved_cpath
    while #package.searchers > searchers do table.remove(package.searchers) end   -- the plugin's
  end)

  it("loads on a net without set_wakeup, and records why there are no wake-ups", function()
    local host_net = {
      open_tcp = function() return nil, "not in this test" end,
      resolve_address = function() return nil, "not in this test" end,
    }
    package.loaded.net = host_net
    local sluice = dofile(ROOT .. "/plugin/sluice.lua")
    assert.equal(host_net, sluice.net)
    assert.is_false(sluice.wakeups)
    assert.matches("set_wakeup", sluice.wakeup_reason, 1, true)
    -- the libraries need sluice's own net, and say so rather than fail later
    assert.is_nil(sluice.http)
    assert.matches("needs sluice's net module", sluice.http_reason, 1, true)
  end)
end)
