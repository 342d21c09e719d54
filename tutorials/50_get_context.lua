-- 50_get_context: DOC-05, Python's "Contexts and start methods": the same
-- program with a context object instead of the global setting.  The Queue
-- and the Process both come from the spawn context; the program's default
-- start method is left alone.
-- start methods: fork
local mp = require "multiprocessing"

local function foo(q)
  q:put("hello")
end

local ctx = mp.get_context("spawn")
local q = ctx.Queue()
local p = ctx.Process{target = foo, args = {q}}
p:start()
print(q:get())
p:join()
print(ctx.get_start_method(), mp.get_start_method())
