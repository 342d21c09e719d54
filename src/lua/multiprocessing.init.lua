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

-- The codec (API.md, "What crosses between processes"): pickle's dumps and
-- loads, and classes whose instances may cross.  The error classes are
-- registered so an error raised in one process arrives as the same class.
mp.dumps = core.dumps
mp.loads = core.loads
mp.register_class = core.register_class
for _, name in ipairs(errors.names) do
  core.register_class("multiprocessing." .. name, errors[name])
end

-- Processes
mp.cpu_count = core.cpu_count
mp.current_process = process.current_process
mp.Process = process.Process

return mp
