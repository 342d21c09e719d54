-- The error classes of multiprocessing (API.md, "Errors").  Each is a class
-- whose instances are raised with error(obj) and caught with pcall:
--
--   local ok, err = pcall(q.get, q, false)
--   if mp.isinstance(err, mp.Empty) then ... end
--   tostring(err)  --> "Empty: queue is empty" (plus the remote traceback, if any)
--
-- Native code raises them by name through the registry (lua_util.cpp).
local class = require "multiprocessing.class"

local errors = {}

local ProcessError = class.new("ProcessError")

-- ProcessError(message [, fields]): fields (a table) are copied onto the
-- instance, e.g. {traceback = ..., data = ...}.
function ProcessError:new(message, fields)
  local obj = {message = message == nil and "" or tostring(message)}
  if type(fields) == "table" then
    for k, v in pairs(fields) do obj[k] = v end
  end
  return setmetatable(obj, self)
end

function ProcessError.__tostring(e)
  local cls = getmetatable(e)
  local s = cls.__name
  if e.message ~= nil and e.message ~= "" then s = s .. ": " .. tostring(e.message) end
  if e.traceback then s = s .. "\n" .. tostring(e.traceback) end
  return s
end

function ProcessError.__eq(a, b)
  return getmetatable(a) == getmetatable(b) and a.message == b.message
end

errors.ProcessError = ProcessError
-- The order matters only for documentation; every class derives from
-- ProcessError so one isinstance test catches them all.
for _, name in ipairs {"BufferTooShort", "AuthenticationError", "TimeoutError", "RemoteError",
                       "BrokenBarrierError", "Empty", "Full", "EOFError", "WorkerLostError",
                       "OSError"} do
  errors[name] = ProcessError:extend(name)
end

-- The names, in a stable order, for help() and docs checks.
errors.names = {"ProcessError", "BufferTooShort", "AuthenticationError", "TimeoutError",
                "RemoteError", "BrokenBarrierError", "Empty", "Full", "EOFError",
                "WorkerLostError", "OSError"}

return errors
