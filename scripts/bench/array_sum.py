# array_sum: a child sums a shared Array of 1,000,000 doubles through the
# slice a[:] and sends the sum back.  Prints the child's time (best of 5).
# Twin: array_sum.lua.
import multiprocessing as mp
import os
import time

N = int(os.environ.get("BENCH_ITERATIONS", 1000000))


def summer(a, conn):
    best = float("inf")
    total = 0.0
    for _ in range(5):
        t0 = time.monotonic()
        t = a[:]
        s = 0.0
        for x in t:
            s += x
        dt = time.monotonic() - t0
        best = min(best, dt)
        total = s
    conn.send((total, best))


if __name__ == "__main__":
    mp.set_start_method("fork")
    arr = mp.RawArray("d", N)
    for i in range(N):
        arr[i] = (i + 1) * 0.5
    here, there = mp.Pipe()
    p = mp.Process(target=summer, args=(arr, there))
    p.start()
    total, best = here.recv()
    p.join()
    assert total == N * (N + 1) / 4, total
    print("RESULT array_sum %.2f ms" % (best * 1e3))
