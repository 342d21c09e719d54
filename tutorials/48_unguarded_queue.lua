-- 48_unguarded_queue: SEED-003-05, a child puts a message; the parent
-- starts it, joins it, then gets the message.  This is the join-before-get
-- order that Python's guidelines warn about (see 45_join_before_get): in
-- Python it works only because the message is small enough for the pipe's
-- buffer.  In luamp the order never matters: put() leaves the message in
-- shared memory and returns.  No main-module guard is needed (API.md,
-- "Settled details"): a spawned child never re-runs this script.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function worker(q)
  q:put("Hello from process")
end

local q = mp.Queue()
local p = mp.Process{target = worker, args = {q}}
p:start()
p:join()
print(q:get())
