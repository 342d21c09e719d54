-- pipe_pingpong: 50,000 round trips of a small table over a duplex Pipe
-- between the main process and a child that echoes.  Prints the time per
-- round trip.  Twin: pipe_pingpong.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 50000

local function echo(conn)
  while true do
    local v = conn:recv()
    if v == nil then break end
    conn:send(v)
  end
end

local a, b = mp.Pipe()
local p = mp.Process{target = echo, args = {b}}
p:start()
local msg = {1, 2, "three", x = 4.5}
for _ = 1, 1000 do a:send(msg); a:recv() end  -- warm-up
local t0 = os.monotonic()
for _ = 1, N do
  a:send(msg)
  a:recv()
end
local per = (os.monotonic() - t0) / N
a:send(nil)
p:join()
print(string.format("RESULT pipe_pingpong %.2f us", per * 1e6))
