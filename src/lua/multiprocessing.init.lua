-- Builds the public table of `require "multiprocessing"` from the native
-- core (src/mp/*.cpp) and the embedded Lua modules (src/lua/*.lua).
local core = require "multiprocessing.core"
local class = require "multiprocessing.class"
local errors = require "multiprocessing.errors"
local process = require "multiprocessing.process"

local mp = {}

mp.__version__ = core.version
mp.version = core.version

-- Errors (API.md, "Errors")
core.set_error_classes(errors)
for _, name in ipairs(errors.names) do mp[name] = errors[name] end
mp.isinstance = class.isinstance

-- Processes
mp.cpu_count = core.cpu_count
mp.current_process = process.current_process
mp.Process = process.Process

-- Pipes and connections (API.md "Pipes and connections")
mp.Pipe = core.Pipe
mp.connection = {
  Listener = core.Listener,
  Client = core.Client,
  wait = core.connection_wait,
}

return mp
