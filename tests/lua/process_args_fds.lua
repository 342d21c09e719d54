-- A Listener and a Connection given in the args of several children stay
-- open and usable in the parent (the launcher passes duplicates of their
-- fds, never the objects' own).  Regression: spawn and forkserver used to
-- close the parent's fds after the first start.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local listener <close> = mp.connection.Listener{address = {"127.0.0.1", 0}}
local r, w = mp.Pipe(false)

local function child(l, out)
  local conn <close> = l:accept()
  out:send({mp.current_process().name, conn:recv()})
end

local procs = {}
for i = 1, 3 do
  procs[i] = mp.Process{target = child, args = {listener, w}}
  procs[i]:start()
end
for i = 1, 3 do
  local c <close> = mp.connection.Client(listener.address)
  c:send(i)
end
local got = {}
for _ = 1, 3 do
  assert(r:poll(20), "no answer from a child within 20 s")
  local msg = r:recv()
  got[msg[2]] = msg[1]
end
for i = 1, 3 do
  assert(got[i], "message " .. i .. " lost")
  procs[i]:join(20)
  assert(procs[i].exitcode == 0, "exit code " .. tostring(procs[i].exitcode))
end
-- The parent's own ends still work after three starts.
w:send("still open")
assert(r:recv() == "still open")
w:close()
r:close()
print("ok")
