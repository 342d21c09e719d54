-- Exercise 4, a solution.  mp.connection.wait returns the connections that
-- have something to read (here in the order the workers finish: 4, 3, 2,
-- 1); a connection is removed from the pending list once it has answered.
-- The timeout keeps a lost worker from hanging the parent.
local mp = require "multiprocessing"

local function worker(i, conn)
  os.sleep(0.05 * (4 - i))
  conn:send({i, i * 100})
  conn:close()
end

local readers = {}
local procs = {}
for i = 1, 4 do
  local r, w = mp.Pipe(false)
  readers[i] = r
  procs[i] = mp.Process{target = worker, args = {i, w}}
  procs[i]:start()
  w:close()
end

local answers, total = {}, 0
local pending = {table.unpack(readers)}
while #pending > 0 do
  local ready = mp.connection.wait(pending, 10)
  assert(#ready > 0, "no worker answered within 10 s")
  for _, conn in ipairs(ready) do
    local msg = conn:recv()
    answers[msg[1]] = msg[2]
    total = total + msg[2]
    for k, c in ipairs(pending) do
      if c == conn then table.remove(pending, k) break end
    end
  end
end

for _, p in ipairs(procs) do p:join(10) end
print("answers:", repr(answers))
print("total:", total)
