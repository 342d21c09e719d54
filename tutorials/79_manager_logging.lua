-- 79_manager_logging: DOC-38, Python's "Reference › Logging".  With
-- mp.log_to_stderr() the "multiprocessing" logger prints records as
-- [LEVEL/ProcessName] message on stderr, from every process: here the
-- manager's server process logs its start and its exit.
--
-- Python ends the session with `del m`; Lua's collector does not run at once,
-- so the manager is shut down explicitly (a <close> variable does the same
-- at the end of its block).
--
-- The session runs in a second luamp whose stderr this script reads, so the
-- records can be shown on stdout.  Lines of the two processes interleave in
-- any order, so they are printed sorted.
-- start methods: fork spawn forkserver
local mp = require "multiprocessing"

if arg[1] == "session" then
  local logger = mp.log_to_stderr()
  logger:setLevel(mp.INFO)
  logger:warning("doomed")
  local m = mp.Manager()
  m:shutdown()
  os.exit(0)
end

local cmd = string.format("%q %q session 2>&1 >/dev/null", arg[-1], arg[0])
local p = assert(io.popen(cmd, "r"))
local out = p:read("a")
p:close()
local lines = {}
for line in out:gmatch("[^\n]+") do lines[#lines + 1] = line end
print(lines[1])            --> [WARNING/MainProcess] doomed
table.remove(lines, 1)
table.sort(lines)
for _, line in ipairs(lines) do print(line) end
