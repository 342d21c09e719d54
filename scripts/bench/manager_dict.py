# manager_dict twin: a child does N sets then N gets on a manager dict.
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000


def work(d, n, w):
    t0 = time.monotonic()
    for i in range(1, n + 1):
        d[i] = i
    s = 0
    for i in range(1, n + 1):
        s += d[i]
    assert s == n * (n + 1) // 2
    w.send(time.monotonic() - t0)


if __name__ == "__main__":
    with mp.Manager() as m:
        d = m.dict()
        r, w = mp.Pipe(False)
        p = mp.Process(target=work, args=(d, N, w))
        p.start()
        elapsed = r.recv()
        p.join()
        print("RESULT manager_dict %.0f ops/s" % (2 * N / elapsed))
