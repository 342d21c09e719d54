# Benchmark "startup": the Python twin of startup.lua.  Launches
# `python3 -c 'import multiprocessing'` N times through a shell, as
# startup.lua does with luamp, and reports the mean per launch.
# Prints: RESULT startup <seconds per launch> s
import os
import shlex
import sys
import time

n = int(os.environ.get("BENCH_ITERATIONS", "50"))
cmd = "%s -c 'import multiprocessing' </dev/null >/dev/null 2>&1" % shlex.quote(sys.executable)
assert os.system(cmd) == 0
t0 = time.perf_counter()
for _ in range(n):
    os.system(cmd)
print("RESULT startup %.9f s" % ((time.perf_counter() - t0) / n))
