# queue_big twin: one producer process puts 200 messages of 1 MiB on a
# Queue, the main process gets them.  MB/s (10^6 bytes).
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200
SIZE = 1024 * 1024


def producer(q, n):
    msg = b"x" * SIZE
    for _ in range(n):
        q.put(msg)


if __name__ == "__main__":
    q = mp.Queue()
    p = mp.Process(target=producer, args=(q, N))
    t0 = time.monotonic()
    p.start()
    total = 0
    for _ in range(N):
        total += len(q.get())
    dt = time.monotonic() - t0
    p.join()
    assert total == N * SIZE
    print("RESULT queue_big %.0f MB/s" % (total / dt / 1e6))
