# proc_start twin: 200 sequential start+join of a trivial target per method.
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def noop():
    pass


if __name__ == "__main__":
    for method in ("fork", "spawn", "forkserver"):
        ctx = mp.get_context(method)
        w = ctx.Process(target=noop)
        w.start()
        w.join()
        t0 = time.monotonic()
        for _ in range(N):
            p = ctx.Process(target=noop)
            p.start()
            p.join()
        per = (time.monotonic() - t0) / N
        print("RESULT proc_start_%s %.4f ms" % (method, per * 1000))
