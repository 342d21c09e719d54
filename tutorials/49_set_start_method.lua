-- 49_set_start_method: DOC-04, Python's "Contexts and start methods":
-- choose the spawn start method for the whole program, then pass a Queue to
-- a child, which puts "hello".  set_start_method may be called once
-- (a second call raises, unless forced).  Python needs the main-module
-- guard here because spawn re-imports the main module; luamp's spawn sends
-- the target and its upvalues instead and never re-runs the script.
-- start methods: fork
local mp = require "multiprocessing"

local function foo(q)
  q:put("hello")
end

mp.set_start_method("spawn")
local q = mp.Queue()
local p = mp.Process{target = foo, args = {q}}
p:start()
print(q:get())
p:join()
print(mp.get_start_method(), pcall(mp.set_start_method, "fork"))
