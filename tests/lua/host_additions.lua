-- The host's additions: repr, os.getpid/getppid/sleep/monotonic, and
-- require "multiprocessing" with its errors and isinstance.
local mp = require "multiprocessing"

assert(type(os.getpid()) == "number" and os.getpid() > 0)
assert(type(os.getppid()) == "number")
local t0 = os.monotonic()
os.sleep(0.05)
local dt = os.monotonic() - t0
assert(dt >= 0.05 and dt < 1, "os.sleep(0.05) took " .. dt)
assert(not pcall(os.sleep, -1))
assert(not pcall(os.sleep, "x"))

assert(repr {1, 4, 9} == "{1, 4, 9}")
assert(repr "hi" == '"hi"')

assert(mp.cpu_count() >= 1)
assert(mp.current_process().name == "MainProcess")
assert(mp.current_process().pid == os.getpid())
assert(type(mp.version) == "string")

-- Errors: classes, instances, tostring, isinstance with subclasses.
local ok, err = pcall(error, mp.TimeoutError("took too long"))
assert(not ok)
assert(mp.isinstance(err, mp.TimeoutError))
assert(mp.isinstance(err, mp.ProcessError))
assert(not mp.isinstance(err, mp.Empty))
assert(tostring(err) == "TimeoutError: took too long", tostring(err))
assert(tostring(mp.Empty()) == "Empty")
for _, name in ipairs {"ProcessError", "BufferTooShort", "AuthenticationError", "TimeoutError",
                       "RemoteError", "BrokenBarrierError", "Empty", "Full", "EOFError",
                       "WorkerLostError"} do
  assert(mp[name], name)
  assert(mp.isinstance(mp[name]("x"), mp.ProcessError), name)
end
assert(not pcall(mp.isinstance, {}, 42))
print("ok")
