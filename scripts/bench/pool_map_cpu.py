# pool_map_cpu twin: 64 CPU-bound tasks on Pool(2) against a serial loop.
import multiprocessing as mp
import sys
import time

TASKS = int(sys.argv[1]) if len(sys.argv) > 1 else 64
WORK = int(sys.argv[2]) if len(sys.argv) > 2 else 300000


def work(seed):
    x = seed
    for _ in range(WORK):
        x = (x * 1103515245 + 12345) % 2147483648
    return x


if __name__ == "__main__":
    xs = list(range(1, TASKS + 1))
    with mp.Pool(2) as pool:
        pool.map(work, [1, 2])
        t0 = time.monotonic()
        serial = [work(x) for x in xs]
        t_serial = time.monotonic() - t0
        t0 = time.monotonic()
        par = pool.map(work, xs)
        t_pool = time.monotonic() - t0
        assert par == serial
    print("RESULT pool_map_cpu %.2f x" % (t_serial / t_pool))
