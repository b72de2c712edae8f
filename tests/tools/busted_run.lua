-- Runs busted under whichever Lua 5.4 host executes this file (lua5.4, or
-- build/<config>/luahost for the sanitizer runs), with busted's usual
-- command line, e.g.:
--   luahost tests/tools/busted_run.lua --output=TAP --pattern=_spec tests/lua
-- On success the runner returns here and the host closes the Lua state
-- normally; on failure busted calls os.exit(1, true), which closes it too.
require 'busted.runner'({ standalone = false })
