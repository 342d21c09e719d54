-- 47_producer_consumer: SEED-001-03, a producer and a consumer process
-- around one Queue, with a sentinel that ends the consumer.  Python uses
-- None; in luamp q:put(nil) is allowed and get returns nil, so nil is the
-- sentinel here too (a message can never be "nothing" by accident: every
-- get returns exactly what one put sent).  One producer: FIFO order holds.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function producer(q)
  for item = 0, 4 do
    q:put(item)
  end
  q:put(nil)  -- the sentinel
end

local function consumer(q)
  while true do
    local item = q:get()
    if item == nil then break end
    print("Received: " .. item)
  end
end

local q = mp.Queue()
local p1 = mp.Process{target = producer, args = {q}}
local p2 = mp.Process{target = consumer, args = {q}}
p1:start()
p2:start()
p1:join()
p2:join()
