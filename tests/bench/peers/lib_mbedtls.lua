-- lib_mbedtls: mbedTLS itself, blocking, in C (build/<cfg>/mbedtls_recv): the TLS bulk
-- baseline for sluice, which uses the same library (its crypto speed is the ceiling).
local M = {}
local bin = (os.getenv("SLUICE_BUILD") or "build/release") .. "/mbedtls_recv"

function M.bulk(cfg)
  if not cfg.tls then return nil end
  local p = assert(io.popen(string.format("%s 127.0.0.1 %d '%s' '%s' 2>/dev/null", bin, cfg.port,
    cfg.ca, cfg.name)))
  local line = p:read("a")
  assert(p:close(), "mbedtls_recv failed: " .. line)
  local bytes, secs, _, cpu = line:match("^mbedtls_recv (%d+) ([%d.]+) ([%d.]+) ([%d.]+)")
  assert(bytes, "mbedtls_recv: " .. line)
  return { bytes = tonumber(bytes), secs = tonumber(secs), cpu = tonumber(cpu) }
end

return M
