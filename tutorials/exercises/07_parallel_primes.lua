-- Exercise 7 (session 4, pools and speedup): split work over processes by
-- hand.
--
-- count_primes(lo, hi) counts the primes in [lo, hi].  The program below
-- does the whole range 1..N in one process.  Make it use WORKERS child
-- processes instead: cut 1..N into WORKERS chunks, give each chunk to a
-- child, have each child send its count back through a Pipe, and add the
-- counts.  The result must not change; on a machine with two or more
-- cores it should get faster.  Expected output:
--
--   primes up to 300000:	25997
--   processes used:	4
--   time:	<some seconds>
--
-- "processes used" must be the number of child processes that really
-- counted (count them as you start them).
--
-- Check your work:  luamp tutorials/exercises/check.lua 7
local mp = require "multiprocessing"

local N, WORKERS = 300000, 4

local function count_primes(lo, hi)
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
local used = 0
-- TODO: replace this serial call by WORKERS children, each counting one
-- chunk and sending its count through a Pipe; add up the counts.
local total = count_primes(1, N)

print(string.format("primes up to %d:", N), total)
print("processes used:", used)
print("time:", string.format("%.2f", os.monotonic() - t0))
