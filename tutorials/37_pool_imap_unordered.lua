-- 37_pool_imap_unordered: SEED-001-09, "Process Pool with imap_unordered".
-- Each task sleeps 0.1 s and returns a square; with 2 workers the results
-- are printed as they complete, not in input order.  (Python imports
-- `time` inside the function; luamp's os.sleep is always there.)
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function slow_square(x)
  os.sleep(0.1)
  return x * x
end

do
  local pool <close> = mp.Pool(2)
  for result in pool:imap_unordered(slow_square, {0, 1, 2, 3, 4}) do
    print("Got: " .. result)
  end
end
