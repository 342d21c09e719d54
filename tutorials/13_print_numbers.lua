-- 13_print_numbers: SEED-003-01, from a tutorial's "The multiprocessing
-- Module".  A child prints 0 to 4.  The Python original has no main-module
-- guard, so it works only under fork (spawn and forkserver re-import the
-- script and fail); in luamp it works under every start method, because a
-- child receives the function and never re-runs this script.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function print_numbers()
  for i = 0, 4 do   -- Python's range(5): the values are data, they stay 0..4
    print(i)
  end
end

local process = mp.Process{target = print_numbers}
process:start()
process:join()
