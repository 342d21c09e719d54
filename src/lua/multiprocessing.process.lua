-- The Process class (API.md, "Processes and contexts") and the bookkeeping
-- of the current process: its Process object, its parent, its children.
-- How a child is started is the business of multiprocessing.popen (one
-- launcher per start method); this file is what Python's process.py is.
local class = require "multiprocessing.class"
local core = require "multiprocessing.core"
local util = require "multiprocessing.util"

local M = {}

local Process = class.new("Process")
M.Process = Process

-- State of this process, replaced in a child by M._become_child.
local current          -- this process's Process object
local parent = nil     -- a ParentProcess, nil in the main process
local children = {}    -- started children not yet known to have exited
local start_method_hook = nil  -- function(process) -> popen (set by context)

-- Fields read through properties (computed), not stored on the object.
local getters = {}
local setters = {}

local function check_open(self, what)
  if rawget(self, "_closed") then
    error(string.format("%s: process object is closed", what), 3)
  end
end

function getters.exitcode(self)
  check_open(self, "exitcode")
  local popen = rawget(self, "_popen")
  if popen == nil then return nil end
  return popen:poll()
end

function getters.pid(self)
  check_open(self, "pid")
  local popen = rawget(self, "_popen")
  if popen then return popen.pid end
  return rawget(self, "_pid")  -- the current process
end
getters.ident = getters.pid

function getters.sentinel(self)
  check_open(self, "sentinel")
  local popen = rawget(self, "_popen")
  if popen == nil then error("sentinel: process not started", 2) end
  return popen.sentinel
end

function getters.daemon(self) return rawget(self, "_daemon") or false end
function setters.daemon(self, v)
  if rawget(self, "_popen") then error("daemon: process has already started", 3) end
  rawset(self, "_daemon", not not v)
end

function getters.name(self) return rawget(self, "_name") end
function setters.name(self, v)
  if type(v) ~= "string" then error("name must be a string", 3) end
  rawset(self, "_name", v)
end

function getters.authkey(self) return rawget(self, "_authkey") end
function setters.authkey(self, v)
  if type(v) ~= "string" then error("authkey must be a string", 3) end
  rawset(self, "_authkey", v)
end

local function process_index(self, k)
  local g = getters[k]
  if g then return g(self) end
  return getmetatable(self)[k]
end

local function process_newindex(self, k, v)
  local s = setters[k]
  if s then return s(self, v) end
  rawset(self, k, v)
end

Process.__index = process_index
Process.__newindex = process_newindex

-- Subclasses (mp.Process:extend()) keep the property behaviour.
function Process:extend(name)
  local sub = class.new(name or "Process")
  for k, v in pairs(self) do
    if type(k) == "string" and k:sub(1, 2) == "__" and k ~= "__name" and k ~= "__parent" then
      sub[k] = v
    end
  end
  sub.__parent = self
  sub.__index = process_index
  sub.__newindex = process_newindex
  sub.new = nil
  return setmetatable(sub, {__index = self, __call = function(cls, ...) return cls:new(...) end})
end

local function next_identity()
  current._counter = (current._counter or 0) + 1
  local id = {}
  for i, v in ipairs(current._identity) do id[i] = v end
  id[#id + 1] = current._counter
  return id
end

-- mp.Process{target=, args=, kwargs=, name=, daemon=, run=, ...}: extra
-- fields become fields of the object (and travel with it to the child).
function Process:new(opts)
  if opts ~= nil and type(opts) ~= "table" then
    error("bad argument #1 to 'Process' (table of options expected, got " .. type(opts) .. ")", 2)
  end
  opts = opts or {}
  local target = opts.target
  if target ~= nil and type(target) ~= "function" then
    local mt = getmetatable(target)
    if not (mt and mt.__call) then
      error("bad argument 'target' to 'Process' (function expected, got " .. type(target) .. ")", 2)
    end
  end
  local args = opts.args
  if args ~= nil and type(args) ~= "table" then
    error("bad argument 'args' to 'Process' (table expected, got " .. type(args) .. ")", 2)
  end
  local obj = setmetatable({}, self)
  for k, v in pairs(opts) do
    if k ~= "target" and k ~= "args" and k ~= "name" and k ~= "daemon" and k ~= "group" then
      rawset(obj, k, v)
    end
  end
  rawset(obj, "_target", target)
  rawset(obj, "_args", args or {})
  rawset(obj, "_identity", next_identity())
  rawset(obj, "_parent_pid", core.getpid())
  rawset(obj, "_parent_name", current._name)
  rawset(obj, "_authkey", current._authkey)
  rawset(obj, "_daemon", opts.daemon == nil and current._daemon or (not not opts.daemon))
  if opts.name ~= nil then
    if type(opts.name) ~= "string" then
      error("bad argument 'name' to 'Process' (string expected, got " .. type(opts.name) .. ")", 2)
    end
    rawset(obj, "_name", opts.name)
  else
    local parts = {}
    for i, v in ipairs(obj._identity) do parts[i] = tostring(v) end
    rawset(obj, "_name", "Process-" .. table.concat(parts, ":"))
  end
  return obj
end

-- The number of positional arguments in an args table: args.n if set,
-- else the largest positive integer key (so holes survive).
local function count_args(args)
  if math.type(args.n) == "integer" then return args.n end
  local n = 0
  for k in pairs(args) do
    if math.type(k) == "integer" and k > n then n = k end
  end
  return n
end
M._count_args = count_args

-- The default run: call the target with the args.
function Process:run()
  local target = rawget(self, "_target")
  if target then
    local args = rawget(self, "_args")
    return target(table.unpack(args, 1, count_args(args)))
  end
end

local function cleanup_children()
  for p in pairs(children) do
    local popen = rawget(p, "_popen")
    if popen == nil or popen:poll() ~= nil then children[p] = nil end
  end
end

function Process:start()
  check_open(self, "start")
  if rawget(self, "_popen") then error("start: cannot start a process twice", 2) end
  if rawget(self, "_parent_pid") ~= core.getpid() then
    error("start: can only start a process object created by the current process", 2)
  end
  if current._daemon then error("start: daemonic processes are not allowed to have children", 2) end
  cleanup_children()
  local popen = start_method_hook(self)
  rawset(self, "_popen", popen)
  children[self] = true
end

function Process:join(timeout)
  check_open(self, "join")
  if self == current then error("join: cannot join current process", 2) end
  if rawget(self, "_parent_pid") ~= core.getpid() then error("join: can only join a child process", 2) end
  local popen = rawget(self, "_popen")
  if popen == nil then error("join: can only join a started process", 2) end
  if timeout ~= nil and type(timeout) ~= "number" then
    error("bad argument #1 to 'join' (number expected, got " .. type(timeout) .. ")", 2)
  end
  local code = popen:wait(timeout)
  if code ~= nil then children[self] = nil end
end

function Process:is_alive()
  check_open(self, "is_alive")
  if self == current then return true end
  local popen = rawget(self, "_popen")
  if popen == nil then return false end
  if rawget(self, "_parent_pid") ~= core.getpid() then error("is_alive: can only test a child process", 2) end
  if popen:poll() == nil then return true end
  children[self] = nil
  return false
end

function Process:terminate()
  check_open(self, "terminate")
  local popen = rawget(self, "_popen")
  if popen then popen:terminate() end
end

function Process:kill()
  check_open(self, "kill")
  local popen = rawget(self, "_popen")
  if popen then popen:kill() end
end

function Process:close()
  if rawget(self, "_closed") then return end
  local popen = rawget(self, "_popen")
  if popen then
    if popen:poll() == nil then
      error("close: cannot close a process while it is still running; call join() or terminate() first", 2)
    end
    popen:close()
    rawset(self, "_popen", nil)
    rawset(self, "_exitcode_closed", popen.returncode)
    children[self] = nil
  end
  rawset(self, "_closed", true)
end

function Process.__tostring(p)
  if rawget(p, "_closed") then
    return string.format('<Process name="%s" closed>', rawget(p, "_name"))
  end
  local state
  local popen = rawget(p, "_popen")
  if p == current then
    state = "started"
  elseif popen == nil then
    state = "initial"
  else
    local code = popen:poll()
    state = code == nil and "started" or ("stopped exitcode=" .. code)
  end
  local parts = {string.format('<Process name="%s"', rawget(p, "_name"))}
  local pid = p.pid
  if pid then parts[#parts + 1] = "pid=" .. pid end
  if rawget(p, "_parent_pid") then parts[#parts + 1] = "parent=" .. rawget(p, "_parent_pid") end
  if rawget(p, "_daemon") then parts[#parts + 1] = "daemon" end
  parts[#parts + 1] = state .. ">"
  return table.concat(parts, " ")
end
Process.__repr = Process.__tostring

-- The parent as seen from a child: pid, name, is_alive, join, sentinel.
local ParentProcess = class.new("ParentProcess")
M.ParentProcess = ParentProcess

-- Alive while the pid exists.  (A fork server's child is not the kernel
-- child of the process that asked for it, so getppid() cannot tell.)
function ParentProcess:is_alive()
  if core.getppid() == self.pid then return true end
  return core.kill(self.pid, 0) == true
end

function ParentProcess:join(timeout)
  local deadline = timeout and (core.monotonic() + math.max(timeout, 0))
  while self:is_alive() do
    if deadline and core.monotonic() >= deadline then return end
    core.sleep(0.01)
  end
end

ParentProcess.__tostring = function(p)
  return string.format('<ParentProcess name="%s" pid=%d>', p.name, p.pid)
end

-- The main process's object.
util._set_name_source(function() return rawget(current, "_name") end)
current = setmetatable({
  _name = "MainProcess",
  _pid = core.getpid(),
  _daemon = false,
  _identity = {},
  _counter = 0,
  _authkey = core.random_bytes(32),
}, Process)

function M.current_process() return current end
function M.parent_process() return parent end

-- Live children (reaping those that have exited), as a sequence.
function M.active_children()
  cleanup_children()
  local list = {}
  for p in pairs(children) do list[#list + 1] = p end
  table.sort(list, function(a, b) return (a.pid or 0) < (b.pid or 0) end)
  return list
end

-- Called by the context: how to start a process (returns a popen object).
function M._set_launcher(fn) start_method_hook = fn end

-- In a newly started child: `self` becomes the current process.
function M._become_child(self, parent_pid, parent_name, parent_sentinel, method)
  rawset(self, "_popen", nil)
  rawset(self, "_started_by", method or "fork")
  -- API.md: a child's get_start_method() reports the method that started
  -- it (a forked child would otherwise keep its parent's default).
  local context = package.loaded["multiprocessing.context"]
  if context then context.set_start_method(method or "fork", true) end
  rawset(self, "_pid", core.getpid())
  rawset(self, "_counter", 0)
  current = self
  parent = setmetatable({pid = parent_pid, name = parent_name, sentinel = parent_sentinel},
                        ParentProcess)
  children = {}
end

-- Runs the process body in a child and returns its exit code: run() under a
-- protected call; an error prints "Process <name>:" and the traceback.
-- Then, as at any normal exit, children are joined or terminated.
function M._bootstrap(self)
  -- As Python's _bootstrap: a child's stdin reads /dev/null, so a child never
  -- competes with its parent for input nor drains what the parent's buffer
  -- would have read.  Only Lua's stdin is replaced; fd 0 stays open.
  local devnull = io.open("/dev/null", "r")
  if devnull then
    io.input(devnull)
    io.stdin = devnull
  end
  util.info("child process calling self.run()")
  local ok, err = core.run_protected(self.run, self)
  local code = 0
  if ok then
    util.info("process shutting down")
  else
    err = tostring(err)
    local method = rawget(self, "_started_by")
    local global = err:match("global '([%w_]+)'")
    if global and method ~= "fork" and rawget(_G, global) == nil then
      err = err .. string.format("\n(note: under the %s start method a child starts from a fresh luamp"
        .. " and never runs the parent's main script, so the global '%s' does not exist here;"
        .. " make it a local of the script (it then travels as an upvalue) or require it from a module)",
        method, global)
    end
    io.stdout:flush()
    io.stderr:write("Process ", rawget(self, "_name"), ":\n", err, "\n")
    io.stderr:flush()
    code = 1
  end
  M._exit_function()
  util.info(string.format("process exiting with exitcode %d", code))
  return code
end

-- At normal exit: terminate daemonic children, join the others.
function M._exit_function()
  local list = M.active_children()
  for _, p in ipairs(list) do
    if rawget(p, "_daemon") then
      util.info("calling terminate() for daemon " .. rawget(p, "_name"))
      rawget(p, "_popen"):terminate()
    end
  end
  for _, p in ipairs(list) do
    util.info("calling join() for process " .. rawget(p, "_name"))
    rawget(p, "_popen"):wait()
  end
  children = {}
end

return M
