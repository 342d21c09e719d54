# lock_uncontended: 1,000,000 acquire+release pairs of a
# multiprocessing.Lock in one process.  Prints ns per pair.
# Twin: lock_uncontended.lua.
import multiprocessing as mp
import os
import time

N = int(os.environ.get("BENCH_ITERATIONS", 1000000))

if __name__ == "__main__":
    lock = mp.Lock()
    for _ in range(10000):
        lock.acquire(); lock.release()
    t0 = time.monotonic()
    for _ in range(N):
        lock.acquire()
        lock.release()
    per = (time.monotonic() - t0) / N
    print("RESULT lock_uncontended %.1f ns" % (per * 1e9))
