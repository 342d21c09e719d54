-- Leak checks for tests that use shared memory: luamp's /dev/shm entries
-- are named luamp-<pid>-<n>-<random>, so a test looks only at the entries of
-- the processes it made (other tests may run at the same time).
--
--   local leakcheck = require "leakcheck"
--   leakcheck.assert_clean({pid1, pid2}, 10)  -- this process is always included
local M = {}

-- The luamp entries of /dev/shm whose creator pid is in `pids` (a list;
-- nil means every luamp entry).
function M.entries(pids)
  local wanted
  if pids then
    wanted = {}
    for _, p in ipairs(pids) do wanted[tostring(p)] = true end
  end
  local found = {}
  local ls = assert(io.popen("ls -1 /dev/shm 2>/dev/null"))
  for name in ls:lines() do
    local pid = name:match("^luamp%-(%d+)%-")
    if pid and (not wanted or wanted[pid]) then found[#found + 1] = name end
  end
  ls:close()
  return found
end

-- Collects garbage, then waits up to `timeout` seconds (default 5) until no
-- entry of this process or of `pids` is left; fails the test otherwise.
function M.assert_clean(pids, timeout)
  local all = {os.getpid()}
  for _, p in ipairs(pids or {}) do all[#all + 1] = p end
  local deadline = os.monotonic() + (timeout or 5)
  local left
  repeat
    collectgarbage()
    collectgarbage()
    left = M.entries(all)
    if #left == 0 then return end
    os.sleep(0.02)
  until os.monotonic() > deadline
  error("shared memory left in /dev/shm: " .. table.concat(left, " "), 2)
end

return M
