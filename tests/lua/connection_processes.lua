-- Connections between processes: huge messages (256 MiB) both ways, order
-- of many messages, a Connection passed in Process args and another passed
-- through a Pipe to a running child.  No child is left behind.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local MiB = 1024 * 1024

-- 256 MiB from a child, and back to another child (a duplex pipe).
do
  local a, b = mp.Pipe()
  local p = mp.Process{target = function(conn)
    local big = string.rep("abcdefgh", 32 * MiB)  -- 256 MiB
    conn:send_bytes(big)
    local back = conn:recv()
    conn:send(#back == #big and back == big)
    conn:close()
  end, args = {b}}
  p:start()
  b:close()
  assert(a:poll(60), "no data within 60 s")
  local got = a:recv_bytes()
  assert(#got == 256 * MiB, #got)
  assert(got:sub(1, 16) == "abcdefghabcdefgh" and got:sub(-8) == "abcdefgh")
  a:send(got)  -- through the codec this time
  got = nil
  assert(a:recv() == true)
  p:join(60)
  assert(p.exitcode == 0, "exit code " .. tostring(p.exitcode))
  a:close()
  collectgarbage()
end

-- Many messages of varied sizes arrive whole and in order.
do
  local r, w = mp.Pipe(false)
  local p = mp.Process{target = function(conn)
    for i = 1, 2000 do conn:send({i, string.rep("x", (i * 7919) % 70000)}) end
    conn:close()
  end, args = {w}}
  p:start()
  w:close()
  for i = 1, 2000 do
    local m = r:recv()
    assert(m[1] == i and #m[2] == (i * 7919) % 70000)
  end
  assert(not pcall(r.recv, r))
  p:join(30)
  assert(p.exitcode == 0)
  r:close()
end

-- A Connection passed to a child in args, and one sent later over a Pipe.
do
  local ctl_parent, ctl_child = mp.Pipe()
  local data_parent, data_child = mp.Pipe()
  local p = mp.Process{target = function(ctl)
    local conn = ctl:recv()           -- a Connection sent through a Pipe
    conn:send("hello through a passed connection")
    ctl:send("done")
  end, args = {ctl_child}}
  p:start()
  ctl_parent:send(data_child)
  data_child:close()
  assert(data_parent:recv() == "hello through a passed connection")
  assert(ctl_parent:recv() == "done")
  p:join(30)
  assert(p.exitcode == 0)
end

-- wait() over a connection and a process sentinel.
do
  local r, w = mp.Pipe(false)
  local p = mp.Process{target = function(w) w:send("first") os.sleep(0.3) end, args = {w}}
  p:start()
  w:close()
  local ready = mp.connection.wait({r, p.sentinel}, 10)
  assert(#ready >= 1 and ready[1] == r)
  assert(r:recv() == "first")
  ready = mp.connection.wait({p.sentinel}, 10)
  assert(#ready == 1 and ready[1] == p.sentinel, "the sentinel fires at exit")
  p:join(10)
  assert(p.exitcode == 0)
  r:close()
end

assert(#mp.active_children() == 0)
print("ok")
