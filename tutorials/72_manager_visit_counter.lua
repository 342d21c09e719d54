-- 72_manager_visit_counter: SEED-001-10.  Ten processes each add 1 to
-- visits in a dict proxy.  The seed claims "Total visits: 10", but that is
-- not guaranteed: `d.visits = d.visits + 1` is two proxy calls (a read, then
-- a write).  Each call is atomic in the server; the pair is not, so two
-- processes can read the same value and one increment is lost.  Runs of
-- Python's version printed 8, 7, 7, 9, 9.
--
-- The fix is a managed Lock held around the read and the write: then the
-- total is always 10.  (Another fix: a single call that does both, e.g. a
-- custom registered type with an `increment` method, tutorial 74.)
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function visit(d)
  d.visits = d.visits + 1
end

local function visit_locked(d, lock)
  local _ <close> = lock:guard()
  d.visits = d.visits + 1
end

do
  local manager <close> = mp.Manager()

  -- Racy: the total may be anything from 1 to 10.
  local d = manager:dict({visits = 0})
  local procs = {}
  for i = 1, 10 do
    procs[i] = mp.Process{target = visit, args = {d}}
    procs[i]:start()
  end
  for _, p in ipairs(procs) do p:join() end
  local total = d.visits
  print("Total visits (no lock): " .. total)
  print("between 1 and 10: " .. tostring(total >= 1 and total <= 10))

  -- Locked: always 10.
  local d2 = manager:dict({visits = 0})
  local lock = manager:Lock()
  procs = {}
  for i = 1, 10 do
    procs[i] = mp.Process{target = visit_locked, args = {d2, lock}}
    procs[i]:start()
  end
  for _, p in ipairs(procs) do p:join() end
  print("Total visits (with a lock): " .. d2.visits)
end
