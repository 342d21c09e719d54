# pipe_pingpong twin: 50,000 round trips of a small dict/list over a duplex
# Pipe between the main process and an echoing child.
import multiprocessing as mp
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 50000


def echo(conn):
    while True:
        v = conn.recv()
        if v is None:
            break
        conn.send(v)


if __name__ == "__main__":
    a, b = mp.Pipe()
    p = mp.Process(target=echo, args=(b,))
    p.start()
    msg = [1, 2, "three", {"x": 4.5}]
    for _ in range(1000):
        a.send(msg)
        a.recv()
    t0 = time.monotonic()
    for _ in range(N):
        a.send(msg)
        a.recv()
    per = (time.monotonic() - t0) / N
    a.send(None)
    p.join()
    print("RESULT pipe_pingpong %.2f us" % (per * 1e6))
