-- python's http.server ignores Range (200, the whole file): resume + wrong sha256
local net = require("net")
local out = "/tmp/review-diff3/probes/user.bin"
local f = io.open(out, "wb"); f:write("the user's own text\n"); f:close()
local req = assert(net.http_request{ url = "http://127.0.0.1:/data.bin", output = out, resume = true, sha256 = string.rep("0", 64) })
while req:get_status() == "waiting" do net.wait(50) end
print(req:get_status())
local g = io.open(out, "rb"); print("file at output:", g and ("%d bytes"):format(#g:read("a")) or "GONE"); if g then g:close() end
print(".part:", io.open(out .. ".part") and "exists" or "none")
