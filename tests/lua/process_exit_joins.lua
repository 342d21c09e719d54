-- os.exit in the main process first terminates daemonic children and
-- waits for the others (Python's sys.exit runs the atexit hook that does
-- this); the exit code is kept.
-- start methods: fork spawn
local exe = assert(os.getenv("LUAMP_EXE"), "LUAMP_EXE is not set")
local method = os.getenv("LUAMP_START_METHOD") or "fork"
local dir = os.tmpname()
os.remove(dir)
assert(os.execute("mkdir -p " .. dir))
local script = dir .. "/exit.lua"
local f = assert(io.open(script, "w"))
f:write([[
local mp = require "multiprocessing"
mp.set_start_method(os.getenv("LUAMP_START_METHOD") or "fork")
local p = mp.Process{target = function() os.sleep(0.3) print("child done") end}
p:start()
local d = mp.Process{target = function() os.sleep(20) print("daemon printed") end, daemon = true}
d:start()
print("main exits")
os.exit(3)
]])
f:close()
local t0 = os.monotonic()
local out = io.popen(string.format("timeout 20 %s %s; echo rc=$?", exe, script))
local text = out:read("a")
out:close()
os.execute("rm -rf " .. dir)
assert(text:find("main exits\nchild done\n", 1, true), "output: " .. text)
assert(not text:find("daemon printed", 1, true), "output: " .. text)
assert(text:find("rc=3", 1, true), "output: " .. text)
assert(os.monotonic() - t0 < 10, "exit took too long")
print("process_exit_joins passed (" .. method .. ")")
