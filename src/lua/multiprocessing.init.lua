-- Builds the public table of `require "multiprocessing"` from the native
-- core (src/mp/*.cpp) and the embedded Lua modules (src/lua/*.lua).
-- Each concept adds its names in a block of its own.
local core = require "multiprocessing.core"
local class = require "multiprocessing.class"
local errors = require "multiprocessing.errors"
local util = require "multiprocessing.util"
local process = require "multiprocessing.process"
local context = require "multiprocessing.context"

local mp = {}

mp.__version__ = core.version
mp.version = core.version

-- Errors (API.md, "Errors")
core.set_error_classes(errors)
for _, name in ipairs(errors.names) do mp[name] = errors[name] end
mp.isinstance = class.isinstance

-- The codec (API.md, "What crosses between processes"): pickle's dumps and
-- loads, and classes whose instances may cross.  The error classes are
-- registered so an error raised in one process arrives as the same class.
mp.dumps = core.dumps
mp.loads = core.loads
mp.register_class = core.register_class
for _, name in ipairs(errors.names) do
  core.register_class("multiprocessing." .. name, errors[name])
end

-- Processes and contexts
mp.cpu_count = core.cpu_count
mp.Process = process.Process
mp.current_process = process.current_process
mp.parent_process = process.parent_process
mp.active_children = process.active_children
mp.set_start_method = context.set_start_method
mp.get_start_method = context.get_start_method
mp.get_all_start_methods = context.get_all_start_methods
mp.get_context = context.make_get_context(mp)
do
  local spawn = require "multiprocessing.spawn"
  local forkserver = require "multiprocessing.forkserver"
  context.add_launcher("spawn", spawn.launch_spawn)
  context.add_launcher("forkserver", forkserver.launch_forkserver)
  mp.set_executable = spawn.set_executable
end

-- Logging
mp.get_logger = util.get_logger
mp.log_to_stderr = util.log_to_stderr
for _, name in ipairs {"SUBDEBUG", "DEBUG", "INFO", "SUBWARNING", "WARNING", "ERROR", "CRITICAL"} do
  mp[name] = util[name]
end

-- At normal exit of the main process (lua_close), daemonic children are
-- terminated and the others joined, as Python's atexit hook does.
mp._exit_guard = setmetatable({}, {__gc = function() process._exit_function() end})

-- Pipes and connections (API.md "Pipes and connections")
mp.Pipe = core.Pipe
mp.connection = {
  Listener = core.Listener,
  Client = core.Client,
  wait = core.connection_wait,
}

-- Managers (API.md "Managers"): mp.Manager() starts a SyncManager server
-- process; mp.managers holds the classes for custom and remote managers.
do
  local managers = require "multiprocessing.managers"
  mp.managers = {
    BaseManager = managers.BaseManager,
    SyncManager = managers.SyncManager,
    BaseProxy = managers.BaseProxy,
    Namespace = managers.Namespace,
    LocalQueue = managers.LocalQueue,
    Server = managers.Server,
  }
  mp.Manager = function() return managers.Manager(nil) end
  context.bind("Manager", function(method)
    return function() return managers.Manager(method) end
  end)
end

-- Pools (API.md "Pools"): mp.Pool uses the default start method; a
-- context's Pool uses the context's.
do
  local pool = require "multiprocessing.pool"
  mp.Pool = function(opts) return pool.new_pool(nil, opts) end
  mp.pool = {Pool = pool.Pool, AsyncResult = pool.AsyncResult, MapResult = pool.MapResult,
             IMapIterator = pool.IMapIterator}
  context.bind("Pool", function(method)
    return function(opts) return pool.new_pool(method, opts) end
  end)
end

return mp
