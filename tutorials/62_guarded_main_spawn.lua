-- 62_guarded_main_spawn: DOC-44, from Python's multiprocessing docs,
-- "Programming guidelines › Safe importing of main module".  Python's
-- corrected form of DOC-43: under the `if __name__ == '__main__':` guard it
-- calls freeze_support(), sets the start method to spawn and starts the
-- process, which is joined when the program ends.
--
-- luamp needs neither the guard nor freeze_support (see 61_unguarded_main
-- and 19_no_freeze_support): a spawned child never runs this script.  The
-- same holds for pools and managers made at the top level.  So the Lua
-- program is the plain sequence of the three steps that matter.
-- set_start_method wins over the harness's LUAMP_START_METHOD (which only
-- supplies a default), so every run below uses spawn.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function foo()
  print("hello from a child started by " .. mp.get_start_method())
end

mp.set_start_method("spawn")
local p = mp.Process{target = foo}
p:start()
-- No join: the main program joins its non-daemonic children when it ends.
