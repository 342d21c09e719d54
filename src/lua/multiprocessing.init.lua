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
-- os.exit skips closing the state (unless its second argument is true), so
-- it does the same first, as Python's sys.exit runs the atexit hook: the
-- process leaves only once its non-daemonic children are done.
local lua_exit = os.exit
os.exit = function(...)
  pcall(process._exit_function)
  return lua_exit(...)
end

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
    wait_until = managers.wait_until,
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

-- Synchronization (API.md "Synchronization"): native futex primitives in
-- shared memory (src/mp/synchronize.cpp); Barrier and Condition:wait_for in
-- multiprocessing.synchronize.
do
  local sync = require "multiprocessing.synchronize"
  mp.Lock = core.Lock
  mp.RLock = core.RLock
  mp.Semaphore = core.Semaphore
  mp.BoundedSemaphore = core.BoundedSemaphore
  mp.Condition = core.Condition
  mp.Event = core.Event
  mp.Barrier = sync.Barrier
  core.register_class("multiprocessing.synchronize.Barrier", sync.Barrier)
end

-- Shared state (API.md "Shared state"): Value, Array and their raw forms
-- (src/mp/sharedctypes.cpp), mp.Struct records, SharedMemory,
-- ShareableList and SharedMemoryManager.
do
  local shared_memory = require "multiprocessing.shared_memory"
  local function lock_option(opts, what)
    if opts == nil then return nil end
    if type(opts) ~= "table" then
      error("bad argument #3 to '" .. what .. "' (options table {lock=...} expected, got " .. type(opts) .. ")", 3)
    end
    return opts.lock
  end
  mp.Value = function(tc, init, opts) return core.Value(tc, init, lock_option(opts, "Value")) end
  mp.Array = function(tc, size_or_seq, opts) return core.Array(tc, size_or_seq, lock_option(opts, "Array")) end
  mp.RawValue = core.RawValue
  mp.RawArray = core.RawArray
  -- mp.Struct{{"x", "d"}, {"y", "d"}}: a record type usable as a typecode.
  local Struct = class.new("Struct")
  function Struct:new(fields)
    if type(fields) ~= "table" or #fields == 0 then
      error("bad argument #1 to 'Struct' (list of {name, typecode} expected)", 3)
    end
    local s = {}
    for i, f in ipairs(fields) do
      if type(f) ~= "table" or type(f[1]) ~= "string" or type(f[2]) ~= "string" then
        error("bad argument #1 to 'Struct' (field " .. i .. " must be {name, typecode})", 3)
      end
      s[i] = {f[1], f[2]}
    end
    return setmetatable(s, self)
  end
  function Struct.__tostring(s)
    local parts = {}
    for i, f in ipairs(s) do parts[i] = f[1] .. ":" .. f[2] end
    return "Struct{" .. table.concat(parts, ", ") .. "}"
  end
  mp.Struct = Struct
  mp.sharedctypes = {
    Value = mp.Value, Array = mp.Array, RawValue = mp.RawValue, RawArray = mp.RawArray,
    synchronized = core.synchronized, copy = core.copy,
  }
  mp.shared_memory = {
    SharedMemory = function(opts, create, size)
      if type(opts) == "table" then return core.SharedMemory(opts.name, opts.create, opts.size or 0) end
      return core.SharedMemory(opts, create, size or 0)
    end,
    ShareableList = shared_memory.ShareableList,
  }
  core.register_class("multiprocessing.shared_memory.ShareableList", shared_memory.ShareableList)
  mp.managers.SharedMemoryManager = shared_memory.SharedMemoryManager
end

-- Queues (API.md "Queues")
mp.Queue = core.Queue
mp.SimpleQueue = core.SimpleQueue
mp.JoinableQueue = core.JoinableQueue

return mp
