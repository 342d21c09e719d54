# pool_map_tiny twin: Pool(2) map of x*x over 200,000 integers.
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000


def sq(x):
    return x * x


if __name__ == "__main__":
    xs = list(range(N))
    with mp.Pool(2) as pool:
        pool.map(sq, [1, 2, 3, 4])
        best = float("inf")
        for _ in range(5):
            t0 = time.monotonic()
            r = pool.map(sq, xs)
            dt = time.monotonic() - t0
            assert len(r) == N and r[-1] == (N - 1) ** 2
            best = min(best, dt)
    print("RESULT pool_map_tiny %.0f tasks/s" % (N / best))
