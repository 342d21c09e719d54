-- 20_lock_output: DOC-08, from "Synchronization between processes".
-- Ten children print "hello world i" while holding one shared Lock, so the
-- lines never mix.  Python's try/finally around acquire/release becomes a
-- guard: `local _ <close> = l:guard()` releases the lock when the block
-- ends, also on error.  The order of the lines is the scheduler's.  Like
-- Python, luamp joins the children when the main script ends, so the
-- example needs no explicit join.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(l, i)
  local _ <close> = l:guard()
  print("hello world", i)
end

local lock = mp.Lock()
for num = 0, 9 do
  mp.Process{target = f, args = {lock, num}}:start()
end
