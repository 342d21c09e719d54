-- Start methods and contexts (API.md, "Processes and contexts").  The
-- module table `mp` is the default context; mp.get_context(name) returns a
-- table with the whole API of mp where the constructors that start
-- processes (Process, and later Pool, Manager, ...) use that start method.
local process = require "multiprocessing.process"
local popen = require "multiprocessing.popen"

local M = {}

local all_methods = {"fork", "spawn", "forkserver"}
local launchers = {fork = popen.launch_fork}
local default_method = nil  -- nil until set or first used

-- Start-method-dependent constructors: name -> function(method) -> value.
local bound = {}

local function check_method(method, fname)
  if type(method) ~= "string" or not launchers[method] then
    if type(method) == "string" then
      for _, m in ipairs(all_methods) do
        if m == method then
          error(string.format("%s: start method %q is not available yet", fname, method), 3)
        end
      end
    end
    error(string.format("bad argument #1 to '%s' (cannot find context for %s)", fname,
                        type(method) == "string" and string.format("%q", method) or type(method)), 3)
  end
end

-- Registers the launcher of a start method (popen objects).
function M.add_launcher(method, fn) launchers[method] = fn end

function M.set_start_method(method, force)
  if default_method ~= nil and not force then error("set_start_method: context has already been set", 2) end
  if method == nil and force then
    default_method = nil
    return
  end
  check_method(method, "set_start_method")
  default_method = method
end

-- The method used when none was set: LUAMP_START_METHOD if it names one
-- (the tutorial harness runs every tutorial under each method this way),
-- else "fork".
local function environment_default()
  local env = os.getenv("LUAMP_START_METHOD")
  if env and launchers[env] then return env end
  return "fork"
end

function M.get_start_method(allow_none)
  if default_method == nil then
    if allow_none then return nil end
    default_method = environment_default()
  end
  return default_method
end

function M.get_all_start_methods()
  local list = {}
  for i, m in ipairs(all_methods) do list[i] = m end
  return list
end

-- Starts `proc` with its class's start method, or the default one.
local function launch(proc)
  local method = proc._start_method or M.get_start_method()
  local fn = launchers[method]
  if not fn then error("start: start method " .. tostring(method) .. " is not available", 3) end
  return fn(proc)
end
process._set_launcher(launch)

-- Declares a start-method-dependent member of contexts: make(method) builds
-- the value a context of that method carries (e.g. its Process class).
function M.bind(name, make) bound[name] = make end

local contexts = {}

-- mp.get_context([method]) -> a context carrying the whole API of `api`.
function M.make_get_context(api)
  return function(method)
    if method == nil then method = M.get_start_method() end
    check_method(method, "get_context")
    if contexts[method] then return contexts[method] end
    local ctx = setmetatable({}, {__index = api, __name = "Context"})
    ctx._name = method
    for name, make in pairs(bound) do ctx[name] = make(method) end
    ctx.get_start_method = function() return method end
    ctx.get_context = function(m) if m == nil then return ctx end return api.get_context(m) end
    contexts[method] = ctx
    return ctx
  end
end

-- A context's Process class: mp.Process with the start method fixed.
M.bind("Process", function(method)
  local P = process.Process:extend("Process")
  P._start_method = method
  return P
end)

return M
