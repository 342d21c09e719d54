# queue_small twin: one producer process puts 200,000 small integers on a
# Queue, the main process gets them.
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200000


def producer(q, n):
    for i in range(1, n + 1):
        q.put(i)


if __name__ == "__main__":
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q, N))
    t0 = time.monotonic()
    p.start()
    s = 0
    for _ in range(N):
        s += q.get()
    dt = time.monotonic() - t0
    p.join()
    assert s == N * (N + 1) // 2
    print("RESULT queue_small %.0f msg/s" % (N / dt))
