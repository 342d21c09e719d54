# pool_apply_async twin: 20,000 apply_async then get all, Pool(2).
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def sq(x):
    return x * x


if __name__ == "__main__":
    with mp.Pool(2) as pool:
        pool.apply(sq, (2,))
        best = float("inf")
        for _ in range(5):
            t0 = time.monotonic()
            rs = [pool.apply_async(sq, (i,)) for i in range(1, N + 1)]
            s = sum(r.get() for r in rs)
            dt = time.monotonic() - t0
            assert s == N * (N + 1) * (2 * N + 1) // 6
            best = min(best, dt)
    print("RESULT pool_apply_async %.0f tasks/s" % (N / best))
