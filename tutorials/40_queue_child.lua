-- 40_queue_child: DOC-06, Python's "Exchanging objects between processes ›
-- Queues".  A child puts a list on a Queue; the parent prints what get
-- returns.  What goes on a queue is encoded, so the parent gets a copy; the
-- nil in the middle of the list survives (Lua tables keep their holes
-- across processes).
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(q)
  q:put({42, nil, "hello"})
end

local q = mp.Queue()
local p = mp.Process{target = f, args = {q}}
p:start()
print(repr(q:get()))    -- prints {42, nil, "hello"}
p:join()
