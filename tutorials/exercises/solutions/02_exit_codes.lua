-- Exercise 2, a solution.  os.exit(n) in a child gives exit code n; an
-- uncaught error gives 1 (and a traceback on stderr); a process killed by
-- signal N has exit code -N, so terminate() (SIGTERM, 15) gives -15.
local mp = require "multiprocessing"

local targets = {
  function() end,
  function() os.exit(3) end,
  function() error("boom") end,
  function() os.sleep(60) end,
}

local procs = {}
for i, f in ipairs(targets) do
  procs[i] = mp.Process{target = f}
  procs[i]:start()
end

procs[4]:terminate()

local codes = {}
for i, p in ipairs(procs) do
  p:join(10)
  codes[i] = p.exitcode
end
print("exit codes:", repr(codes))
