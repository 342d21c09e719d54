-- The spawn start method (and the payload shared with forkserver): a child
-- that starts from a fresh luamp receives its Process object, target, args
-- and the parent's settings encoded by the codec (API.md, settled details
-- "No main-module guard").  The child never re-runs the main script: its
-- globals are fresh, upvalues arrive by value, luamp objects by reference.
local core = require "multiprocessing.core"
local process = require "multiprocessing.process"
local util = require "multiprocessing.util"
local popen = require "multiprocessing.popen"

local M = {}

local executable = nil  -- mp.set_executable(path) overrides /proc/self/exe

function M.set_executable(path)
  if type(path) ~= "string" then
    error("bad argument #1 to 'set_executable' (string expected, got " .. type(path) .. ")", 2)
  end
  executable = path
end

function M.get_executable()
  return executable or core.executable() or "luamp"
end

-- Keys of a Process class that belong to luamp's Process machinery, not to
-- the user's subclass: they are not sent.
local function inherited_from_base(k, v)
  return rawget(process.Process, k) == v or k == "__parent" or k == "__index" or k == "__newindex"
end

-- The description of `proc` that a fresh child needs.
function M.payload(proc, method)
  local fields = {}
  for k, v in pairs(proc) do
    if k ~= "_popen" then fields[k] = v end
  end
  local classes = {}
  local cls = getmetatable(proc)
  while cls and cls ~= process.Process do
    local own = {}
    for k, v in pairs(cls) do
      if not inherited_from_base(k, v) then own[k] = v end
    end
    classes[#classes + 1] = own
    cls = rawget(cls, "__parent")
  end
  return {
    fields = fields,
    classes = classes,
    parent_pid = core.getpid(),
    parent_name = process.current_process().name,
    method = method,
    path = package.path,
    cpath = package.cpath,
    arg = rawget(_G, "arg"),
    log = util._config(),
    executable = executable,
    forkserver_address = M.forkserver_address,
  }
end

-- Encodes a payload into a memfd; returns memfd, fds_to_pass.  The module
-- search paths go in an envelope around the encoded payload, so the child
-- can set them before decoding (decoding may `require` the module that
-- registers a class).
-- A value that cannot cross is named by its place in the Process (args[2],
-- target, process.extra), not by the payload's layout.
local function user_path(msg)
  if type(msg) ~= "string" then return msg end
  return (msg:gsub("%(at process%.fields%._args", "(at args", 1)
             :gsub("%(at process%.fields%._target", "(at target", 1)
             :gsub("%(at process%.fields%.", "(at process.", 1))
end

function M.encode_payload(payload)
  local ok, bytes, fds = pcall(core.encode_with_fds, payload, "process")
  if not ok then error(user_path(bytes), 0) end
  local envelope = core.dumps({path = package.path, cpath = package.cpath, body = bytes})
  return core.memfd_from(envelope), fds
end

-- In the child: reads the payload from its memfd and decodes it.
function M.decode_payload(payload_fd, fds)
  local envelope = core.loads(core.read_fd(payload_fd))
  package.path = envelope.path or package.path
  package.cpath = envelope.cpath or package.cpath
  return core.decode_with_fds(envelope.body, fds)
end

-- In the child: rebuild the process object from the payload and run it.
-- Never returns.
function M.run(payload)
  package.path = payload.path or package.path
  package.cpath = payload.cpath or package.cpath
  rawset(_G, "arg", payload.arg)
  util._apply_config(payload.log)
  if payload.executable then executable = payload.executable end
  M.forkserver_address = payload.forkserver_address
  local context = require "multiprocessing.context"
  context.set_start_method(payload.method, true)
  local cls = process.Process
  for i = #payload.classes, 1, -1 do
    local own = payload.classes[i]
    local sub = cls:extend(own.__name)
    for k, v in pairs(own) do sub[k] = v end
    cls = sub
  end
  local proc = setmetatable(payload.fields, cls)
  if payload.sentinel_fd then core.set_own_sentinel(payload.sentinel_fd) end
  process._become_child(proc, payload.parent_pid, payload.parent_name, nil, payload.method)
  core.exit(process._bootstrap(proc))
end

-- Entry point of a spawned child: luamp -E -e "require('multiprocessing.spawn').main(fd, {fds})"
function M.main(payload_fd, fds)
  require "multiprocessing"
  local ok, payload = pcall(M.decode_payload, payload_fd, fds or {})
  if not ok then
    io.stderr:write("luamp: spawn: cannot read the process payload: ", tostring(payload), "\n")
    core.exit(1)
  end
  M.run(payload)
end

local function close_all(fds)
  for _, fd in ipairs(fds) do core.close_fd(fd) end
end

-- The spawn launcher: exec a fresh luamp and hand it the payload.
function M.launch_spawn(proc)
  local payload = M.payload(proc, "spawn")
  local sentinel_r, sentinel_w = core.pipe()
  payload.sentinel_fd = sentinel_w
  local ok, memfd, fds = pcall(M.encode_payload, payload)
  if not ok then
    core.close_fd(sentinel_r)
    core.close_fd(sentinel_w)
    error(memfd, 0)
  end
  local exe = M.get_executable()
  local code = string.format("require('multiprocessing'); require('multiprocessing.spawn').main(%d, {%s})", memfd,
                             table.concat(fds, ","))
  local keep = {memfd, sentinel_w}
  for _, fd in ipairs(fds) do keep[#keep + 1] = fd end
  local started, pid = pcall(core.spawn_exec, exe, {exe, "-E", "-e", code}, keep,
                             rawget(proc, "_daemon"))
  core.close_fd(memfd)
  core.close_fd(sentinel_w)
  close_all(fds)
  if not started then
    core.close_fd(sentinel_r)
    error(pid, 0)
  end
  return setmetatable({pid = pid, sentinel = sentinel_r, method = "spawn"}, popen.Popen)
end

return M
