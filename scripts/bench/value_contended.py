# value_contended: 2 processes each do 100,000 `v.value += 1` under the
# Value's lock.  Prints the total operations per second.
# Twin: value_contended.lua.
import multiprocessing as mp
import os
import time

N = int(os.environ.get("BENCH_ITERATIONS", 100000))


def work(v, n):
    lock = v.get_lock()
    for _ in range(n):
        with lock:
            v.value += 1


if __name__ == "__main__":
    mp.set_start_method("fork")
    v = mp.Value("i", 0)
    t0 = time.monotonic()
    ps = [mp.Process(target=work, args=(v, N)) for _ in range(2)]
    for p in ps:
        p.start()
    for p in ps:
        p.join()
    dt = time.monotonic() - t0
    assert v.value == 2 * N, v.value
    print("RESULT value_contended %.3f Mops/s" % (2 * N / dt / 1e6))
