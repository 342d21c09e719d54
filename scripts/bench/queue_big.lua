-- queue_big: one producer process puts 200 messages of 1 MiB on a Queue,
-- the main process gets them.  Prints MB/s (10^6 bytes).  Twin: queue_big.py.
local mp = require "multiprocessing"
local N = tonumber(arg and arg[1]) or 200
local SIZE = 1024 * 1024

local function producer(q, n)
  local msg = string.rep("x", SIZE)
  for _ = 1, n do q:put(msg) end
end

local q = mp.Queue()
local p = mp.Process{target = producer, args = {q, N}}
local t0 = os.monotonic()
p:start()
local total = 0
for _ = 1, N do total = total + #q:get() end
local dt = os.monotonic() - t0
p:join()
assert(total == N * SIZE)
print(string.format("RESULT queue_big %.0f MB/s", total / dt / 1e6))
