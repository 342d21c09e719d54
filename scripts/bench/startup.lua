-- Benchmark "startup": how long `luamp -e ''` takes from launch to exit.
-- Twin of startup.py (python3 -c 'import multiprocessing').  Launches the
-- interpreter N times through os.execute and reports the mean per launch.
-- Prints: RESULT startup <seconds per launch> s
local exe = os.getenv("LUAMP_EXE") or (arg and arg[-1]) or "luamp"
local n = tonumber(os.getenv("BENCH_ITERATIONS")) or 50
local cmd = string.format("'%s' -e '' </dev/null >/dev/null 2>&1", exe:gsub("'", "'\\''"))
assert(os.execute(cmd), "cannot run " .. exe)
local t0 = os.monotonic()
for _ = 1, n do
  os.execute(cmd)
end
print(string.format("RESULT startup %.9f s", (os.monotonic() - t0) / n))
