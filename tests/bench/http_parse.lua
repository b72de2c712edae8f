-- http_parse: MB/s of the HTTP head parser, the chunked decoder and bounded inflate
-- (net/http_parse.c, net/http_chunked.c, net/inflate.c), each with a baseline measured
-- in the same run (memmem, memcpy, zlib alone): runs build/<mode>/bench_http_parse.
-- Prints figures only; never asserts on time.
--
--   lua5.4 tests/bench/http_parse.lua [MB]    (default 64 MB of input per figure)
-- Environment: SLUICE_BUILD (default build/release).
local build = os.getenv("SLUICE_BUILD") or "build/release"
local cmd = string.format("%q %s", build .. "/bench_http_parse", tonumber(arg[1] or "64") or 64)
local ok = os.execute(cmd)
if not ok then
  io.stderr:write("http_parse bench failed: ", cmd, "\n")
  os.exit(1)
end
