-- Exercise 4 (session 2, talking between processes): fan-in with
-- mp.connection.wait.
--
-- Four workers each get their own Pipe.  Worker i sleeps a little (the
-- later workers sleep less, so they answer first), then sends
-- {i, i * 100}.  The parent must read each answer as soon as it arrives,
-- whichever worker it comes from: use mp.connection.wait(list) to learn
-- which connections are ready, instead of calling recv() on them in
-- order.  Record the answers by worker number, then print them and the
-- total.  Expected output:
--
--   answers:	{100, 200, 300, 400}
--   total:	1000
--
-- Check your work:  luamp tutorials/exercises/check.lua 4
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
  w:close()   -- the parent keeps only the reading end
end

local answers, total = {}, 0
-- TODO: while some answers are missing, wait for ready readers with
-- mp.connection.wait(pending, 10), recv() from each ready one, and store
-- answers[i] = value (and add to total).

for _, p in ipairs(procs) do p:join(10) end
print("answers:", repr(answers))
print("total:", total)
