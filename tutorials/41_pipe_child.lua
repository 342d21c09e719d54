-- 41_pipe_child: DOC-07, Python's "Exchanging objects between processes ›
-- Pipes".  mp.Pipe() returns the two ends of a duplex connection; the child
-- sends a list on its end and closes it, the parent receives it.  The nil in
-- the middle of the list survives the trip (Lua tables keep their holes
-- across processes).  As in Python, two processes must not use the same end
-- at the same time.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(conn)
  conn:send({42, nil, "hello"})
  conn:close()
end

local parent_conn, child_conn = mp.Pipe()
local p = mp.Process{target = f, args = {child_conn}}
p:start()
print(repr(parent_conn:recv()))   -- prints {42, nil, "hello"}
p:join()
