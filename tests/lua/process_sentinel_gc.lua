-- A Process object that is joined and dropped without close() must not keep
-- its sentinel fd open forever (Python closes it when the Popen object is
-- collected): a long-running program that starts many processes would run
-- out of descriptors.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

-- The fewest fds seen over a few looks: io.popen's own pipe can be seen
-- half-made by `ls` when the machine is busy.
local function open_fds()
  local least = math.huge
  for _ = 1, 3 do
    local h = assert(io.popen("ls /proc/" .. os.getpid() .. "/fd"))
    local n = 0
    for _ in h:lines() do n = n + 1 end
    h:close()
    least = math.min(least, n)
  end
  return least
end

local function run_one()
  local p = mp.Process{target = function() end}
  p:start()
  p:join(30)
  assert(p.exitcode == 0, "child failed: " .. tostring(p.exitcode))
end

run_one()  -- a forkserver is started on first use and stays: not a leak
collectgarbage()
collectgarbage()
local baseline = open_fds()
for _ = 1, 20 do run_one() end
collectgarbage()
collectgarbage()
local after = open_fds()
assert(after <= baseline, string.format("%d fds leaked by 20 dropped Process objects", after - baseline))

-- close() still works and is idempotent next to the collector.
local p = mp.Process{target = function() end}
p:start()
p:join(30)
p:close()
p:close()
p = nil
collectgarbage()
assert(open_fds() <= baseline)
