-- Ctrl-C (SIGINT) in a luamp whose main script waits in a proxy call (a
-- managed queue's get, parked in the server): the script stops with one
-- "interrupted!" error, and the manager's server process is gone.
-- start methods: fork spawn forkserver
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE not set")
local method = os.getenv("LUAMP_START_METHOD") or "fork"

local dir = os.tmpname()
os.remove(dir)
local script = dir .. ".lua"
local errfile = dir .. ".err"
local f = assert(io.open(script, "w"))
f:write([[
local mp = require "multiprocessing"
local m <close> = mp.Manager()
local q = m:Queue()
io.write(os.getpid(), " ", m._process.pid, "\n")
io.stdout:flush()
q:get()
print("get returned")
]])
f:close()

local function alive(pid)
  local st = io.open("/proc/" .. pid .. "/stat")
  if not st then return false end
  local text = st:read("a") or ""
  st:close()
  local state = text:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local p = assert(io.popen(string.format("LUAMP_START_METHOD=%s exec %s %s 2>%s", method, exe, script, errfile)))
local line = p:read("l")
local owner, server = line:match("^(%d+) (%d+)$")
assert(owner, "unexpected first line: " .. tostring(line))
os.sleep(0.3)  -- the get is parked in the server
local t0 = os.monotonic()
os.execute("kill -INT " .. owner)
local rest = p:read("a")
local ok, how, code = p:close()
assert(os.monotonic() - t0 < 10, "the interrupted script took too long to stop")
assert(not ok and how == "exit" and code == 1, string.format("exit: %s %s %s", tostring(ok), how, code))
assert(not rest:find("get returned"))
local ef = assert(io.open(errfile))
local err = ef:read("a")
ef:close()
local _, count = err:gsub("interrupted!", "")
assert(count == 1, "expected one 'interrupted!' error, stderr was:\n" .. err)
local deadline = os.monotonic() + 3
while alive(server) and os.monotonic() < deadline do os.sleep(0.05) end
assert(not alive(server), "the manager's server survived the interrupt")
os.remove(script)
os.remove(errfile)
print("managers_interrupt passed (" .. method .. ")")
