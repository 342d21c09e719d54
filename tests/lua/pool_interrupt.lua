-- Ctrl-C (SIGINT) in a luamp whose main script waits in Pool:map: the
-- script stops with one "interrupted!" error, and no worker is left.
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
local pool <close> = mp.Pool(2)
local pids = pool:_worker_pids()
io.write(os.getpid(), " ", pids[1], " ", pids[2], "\n")
io.stdout:flush()
pool:map(function(x) os.sleep(x) return x end, {30, 30, 30, 30}, 1)
print("map returned")
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
local owner, w1, w2 = line:match("^(%d+) (%d+) (%d+)$")
assert(owner, "unexpected first line: " .. tostring(line))
os.sleep(0.3)  -- the map is running
local t0 = os.monotonic()
os.execute("kill -INT " .. owner)
local rest = p:read("a")
local ok, how, code = p:close()
assert(os.monotonic() - t0 < 10, "the interrupted script took too long to stop")
assert(not ok and how == "exit" and code == 1, string.format("exit: %s %s %s", tostring(ok), how, code))
assert(not rest:find("map returned"))
local ef = assert(io.open(errfile))
local err = ef:read("a")
ef:close()
local _, count = err:gsub("interrupted!", "")
assert(count == 1, "expected one 'interrupted!' error, stderr was:\n" .. err)
local deadline = os.monotonic() + 3
while (alive(w1) or alive(w2)) and os.monotonic() < deadline do os.sleep(0.05) end
assert(not alive(w1) and not alive(w2), "a worker survived the interrupt")
-- nothing in /dev/shm from the interrupted program
local ls = io.popen("ls /dev/shm")
for name in ls:lines() do
  assert(not name:find("^luamp%-" .. owner .. "%-"), "shared memory left: " .. name)
end
ls:close()
os.remove(script)
os.remove(errfile)
print("pool_interrupt passed (" .. method .. ")")
