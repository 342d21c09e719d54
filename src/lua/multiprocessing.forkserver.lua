-- The forkserver start method: one server process per program, started on
-- first use from a fresh luamp with multiprocessing loaded, forks a child
-- for each request (native loop in src/mp/forkserver.cpp).  Requests carry
-- the same payload as spawn; the child's exit code comes back over the
-- request's connection, which is the child's sentinel.
local core = require "multiprocessing.core"
local spawn = require "multiprocessing.spawn"
local popen = require "multiprocessing.popen"

local M = {}

local server = nil  -- {address=, pid=, alive_w=} of the server we started
local server_owner = nil  -- pid of the process that started it

local function ensure_server()
  if spawn.forkserver_address then return spawn.forkserver_address end
  if server and server_owner == core.getpid() then return server.address end
  local lfd, address = core.forkserver_listen()
  local alive_r, alive_w = core.pipe()
  local exe = spawn.get_executable()
  local code = string.format("require('multiprocessing'); require('multiprocessing.forkserver').serve(%d, %d)", lfd, alive_r)
  local ok, pid = pcall(core.spawn_exec, exe, {exe, "-E", "-e", code}, {lfd, alive_r}, true)
  core.close_fd(lfd)
  core.close_fd(alive_r)
  if not ok then
    core.close_fd(alive_w)
    error(pid, 0)
  end
  server = {address = address, pid = pid, alive_w = alive_w}
  server_owner = core.getpid()
  return address
end

-- A child of the fork server: not ours to waitpid, its status comes over
-- the connection.  Signals and closing are popen.Popen's.
local Popen = setmetatable({}, {__index = popen.Popen})
Popen.__index = Popen
Popen.__gc = popen.Popen.__gc  -- metamethods are not inherited through __index

function Popen:poll()
  if self.returncode == nil and self.sentinel then
    self.returncode = core.forkserver_status(self.sentinel, false)
  end
  return self.returncode
end

function Popen:wait(timeout)
  if self.returncode ~= nil then return self.returncode end
  if timeout ~= nil then
    if timeout <= 0 or not core.wait_readable(self.sentinel, timeout) then return self:poll() end
  end
  self.returncode = core.forkserver_status(self.sentinel, true)
  return self.returncode
end

function M.launch_forkserver(proc)
  local address = ensure_server()
  local payload = spawn.payload(proc, "forkserver")
  payload.forkserver_address = address
  local memfd, fds = spawn.encode_payload(payload)
  local ok, conn, pid = pcall(core.forkserver_request, address, memfd, fds,
                             rawget(proc, "_daemon"))
  core.close_fd(memfd)
  for _, fd in ipairs(fds) do core.close_fd(fd) end
  if not ok then error(conn, 0) end
  return setmetatable({pid = pid, sentinel = conn, method = "forkserver"}, Popen)
end

-- The server process: luamp -E -e "require('multiprocessing.forkserver').serve(lfd, alive_fd)"
function M.serve(listen_fd, alive_fd)
  require "multiprocessing"
  core.ignore_sigint()
  local payload_fd, fds = core.forkserver_serve(listen_fd, alive_fd)
  if payload_fd == nil then core.exit(0) end
  -- Here we are a new child: a process of the program like any other.
  core.restore_sigint()
  local ok, payload = pcall(spawn.decode_payload, payload_fd, fds)
  if not ok then
    io.stderr:write("luamp: forkserver: cannot read the process payload: ", tostring(payload), "\n")
    core.exit(1)
  end
  spawn.run(payload)
end

return M
