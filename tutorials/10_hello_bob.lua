-- 10_hello_bob: DOC-02, from Python's multiprocessing docs, "Introduction ›
-- The Process class".  The smallest program with a child process: a
-- function runs in a new process with one argument, and the parent waits
-- for it with join().  Python's print puts a space between its arguments
-- and Lua's a tab, so the line is built by concatenation.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function f(name)
  print("hello " .. name)
end

-- No `if __name__ == '__main__':` guard: a luamp child never re-runs this
-- script (see 61_unguarded_main.lua).
local p = mp.Process{target = f, args = {"bob"}}
p:start()
p:join()
