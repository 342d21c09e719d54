-- proc_start: 200 sequential start+join of a trivial target, per start
-- method.  Prints the time per process.  Twin: proc_start.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 200

local function noop() end

for _, method in ipairs {"fork", "spawn", "forkserver"} do
  local ok, ctx = pcall(mp.get_context, method)
  if ok then
    -- One warm-up start (the forkserver is started on first use).
    local w = ctx.Process{target = noop}
    w:start(); w:join()
    local t0 = os.monotonic()
    for _ = 1, N do
      local p = ctx.Process{target = noop}
      p:start()
      p:join()
    end
    local per = (os.monotonic() - t0) / N
    print(string.format("RESULT proc_start_%s %.4f ms", method, per * 1000))
  end
end
