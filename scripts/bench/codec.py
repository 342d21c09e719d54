# Benchmark "codec": the Python twin of codec.lua.  pickle protocol 5 (the C
# accelerated module) on the equivalent list of 1,000 dicts, 1,000 times.
# Prints: RESULT codec <seconds per round trip of the list> s
import os
import pickle
import time

records = [{"id": i, "name": "user%d" % i, "score": i * 1.5, "active": i % 2 == 0,
            "email": "user%d@example.com" % i} for i in range(1, 1001)]

n = int(os.environ.get("BENCH_ITERATIONS", "1000"))
back = pickle.loads(pickle.dumps(records, protocol=5))
assert len(back) == 1000 and back[999]["email"] == "user1000@example.com"

t0 = time.perf_counter()
for _ in range(n):
    pickle.loads(pickle.dumps(records, protocol=5))
dt = time.perf_counter() - t0
print("RESULT codec %.9f s" % (dt / n))
print("INFO codec message %d bytes" % len(pickle.dumps(records, protocol=5)))
