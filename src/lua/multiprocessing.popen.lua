-- Launchers, one per start method: each starts a Process and returns a
-- popen object with `pid`, `sentinel`, `returncode` and poll / wait /
-- terminate / kill / close (as CPython's popen_fork.py and friends).
local core = require "multiprocessing.core"
local process = require "multiprocessing.process"

local M = {}

-- A child we can waitpid() on (fork and spawn).
local Popen = {}
Popen.__index = Popen
M.Popen = Popen

-- Exit code if the child has exited (reaping it), else nil.
function Popen:poll()
  if self.returncode == nil then
    local code = core.waitpid(self.pid, false)
    if code ~= nil then
      self.returncode = code
      if self.on_exit then self.on_exit(code) end
    end
  end
  return self.returncode
end

-- Waits up to `timeout` seconds (nil: forever) and returns the exit code,
-- or nil if the child is still running.
function Popen:wait(timeout)
  if self.returncode ~= nil then return self.returncode end
  if timeout ~= nil then
    if timeout <= 0 then return self:poll() end
    if not core.wait_readable(self.sentinel, timeout) then return self:poll() end
  end
  -- The sentinel is readable, or we wait forever: block in waitpid.
  local code = core.waitpid(self.pid, true)
  if code ~= nil and self.returncode == nil then
    self.returncode = code
    if self.on_exit then self.on_exit(code) end
  end
  return self.returncode
end

function Popen:send_signal(sig)
  if self:poll() == nil then core.kill(self.pid, sig) end
end

function Popen:terminate() self:send_signal(core.signals.SIGTERM) end
function Popen:kill() self:send_signal(core.signals.SIGKILL) end

function Popen:close()
  if self.sentinel then
    core.close_fd(self.sentinel)
    self.sentinel = nil
  end
end
-- A Process dropped without close() must not keep its sentinel open for
-- the rest of the program (CPython's Popen closes it in a finalizer).
Popen.__gc = Popen.close

-- fork: the child continues from the parent's state and runs the process
-- body there; it never returns into the caller's code.
function M.launch_fork(proc)
  local parent_pid = core.getpid()
  local parent_name = process.current_process().name
  -- The child runs child_main inside core.fork and leaves from there.
  local pid, sentinel = core.fork(rawget(proc, "_daemon"), function()
    process._become_child(proc, parent_pid, parent_name, nil)
    return process._bootstrap(proc)
  end)
  return setmetatable({pid = pid, sentinel = sentinel, method = "fork"}, Popen)
end

return M
