-- 19_no_freeze_support: DOC-14, from Python's multiprocessing docs,
-- "Reference › Miscellaneous".  Python's program calls freeze_support()
-- first thing under the main guard, for programs frozen into a Windows
-- executable (and, in newer docs, whenever spawn is used): the frozen
-- executable must notice that it was started as a child.
--
-- Not carried over (API.md, "Settled details"): a luamp child is started as
-- `luamp` itself with its payload, never as the user's program, so there
-- is nothing to freeze and nothing to detect, and mp has no freeze_support.
-- The program is the same without it.  Like Python's, it never calls
-- join(): non-daemonic children are joined when the main program ends.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f()
  print("hello world!")
end

print("mp.freeze_support is " .. tostring(mp.freeze_support))
mp.Process{target = f}:start()
