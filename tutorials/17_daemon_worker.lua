-- 17_daemon_worker: SEED-001-11, from a reference page's "Common Patterns ›
-- Daemon Processes".  A background worker loops forever; started as a
-- daemon, it is terminated when the main program ends, so the program
-- exits at once instead of waiting for a loop that never ends.
--
-- The original ends right after start(), so whether "Working..." appears
-- at all is a race with the exit.  Here the worker tells the main program
-- when it has printed (through a small file, since this tutorial uses
-- only Process), which makes the output the same on every run.  If the
-- daemon were not terminated, it would keep stdout open and the program's
-- reader (the tutorial harness) would wait forever.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

local function background_worker(ready_path)
  while true do
    print("Working...")
    io.stdout:flush()
    if ready_path then            -- the first time only: tell the main program
      local f = assert(io.open(ready_path, "w"))
      f:write("ready")
      f:close()
      ready_path = nil
    end
    os.sleep(5)
  end
end

local ready_path = os.tmpname()
local p = mp.Process{target = background_worker, args = {ready_path}, daemon = true}
p:start()

-- The main program can continue; here it waits (at most 10 s) until the
-- worker has printed once.
local deadline = os.monotonic() + 10
repeat
  local f = io.open(ready_path)
  local text = f and f:read("a")
  if f then f:close() end
  if text == "ready" then break end
  os.sleep(0.01)
until os.monotonic() > deadline
os.remove(ready_path)

print("main: daemon " .. tostring(p.daemon) .. ", alive " .. tostring(p:is_alive()))
print("main: done; the daemon is terminated as the program exits")
-- When the main chunk ends, luamp terminates daemonic children (SIGTERM)
-- and joins the others, as Python's exit handler does.
