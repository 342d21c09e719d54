-- Exercise 8 (session 4, pools and speedup): the same count with a Pool.
--
-- Exercise 7 cut 1..N into one chunk per process, so the worker with the
-- biggest numbers finished last.  A Pool hands small tasks to whichever
-- worker is free.  Cut 1..N into TASKS ranges {lo, hi}, and count them
-- with pool:map(count_range, ranges) on a Pool of 4 processes (made with
-- `local pool <close> = mp.Pool(4)`).  Expected output:
--
--   primes up to 300000:	25997
--   tasks:	30
--   time:	<some seconds>
--
-- Check your work:  luamp tutorials/exercises/check.lua 8
local mp = require "multiprocessing"

local N, TASKS = 300000, 30

local function count_range(range)
  local lo, hi = range[1], range[2]
  local count = 0
  for n = math.max(lo, 2), hi do
    local prime = true
    for d = 2, math.floor(math.sqrt(n)) do
      if n % d == 0 then prime = false break end
    end
    if prime then count = count + 1 end
  end
  return count
end

local t0 = os.monotonic()
local ranges = {}
-- TODO: fill `ranges` with TASKS ranges {lo, hi} that cover 1..N exactly once

local counts = {}
-- TODO: counts = the result of pool:map(count_range, ranges) on a Pool of 4

local total = 0
for _, c in ipairs(counts) do total = total + c end
print(string.format("primes up to %d:", N), total)
print("tasks:", #counts)
print("time:", string.format("%.2f", os.monotonic() - t0))
