# pool_map_cs1 twin: Pool(2) map of x*x over 20,000 integers, chunksize 1.
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def sq(x):
    return x * x


if __name__ == "__main__":
    xs = list(range(N))
    with mp.Pool(2) as pool:
        pool.map(sq, [1, 2, 3, 4], 1)
        best = float("inf")
        for _ in range(5):
            t0 = time.monotonic()
            r = pool.map(sq, xs, 1)
            dt = time.monotonic() - t0
            assert len(r) == N and r[-1] == (N - 1) ** 2
            best = min(best, dt)
    print("RESULT pool_map_cs1 %.0f tasks/s" % (N / best))
