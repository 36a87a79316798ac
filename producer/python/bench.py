"""bench.py -- puts/s of the Python binding against socket.send in the same run.

    bench.py TOOLS_DIR [--json] [--puts N] [--reps R]

At 64 B and 1 KiB: Ring.put (timeout -1) into a fresh default ring drained
by tool_consume, a separate process that reads and checks every byte
(after one untimed lap of the ring, so that no timed put pays for the first
touch of a page of the shm object); and,
as the baseline, socket.send of the same body on a Unix datagram socket
pair (system default buffers) whose other end is read by a separate
process. Same loop shape for both, one producer, producer-side puts/s over
N puts (2,000,000 by default: several laps of the ring at 64 B, so the rate
is sustained, bound by the consumer as much as by the put, as the socket's
is by its reader). Each cell runs R times and the median is reported.
"""
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import time

import s3ring


def bench_s3ring(tools, size, n):
    name = "bench-py-%d" % os.getpid()
    r = s3ring.Ring(name, create=True)
    try:
        # One lap of the ring first, so that no timed put pays for the
        # first touch of a page of the shm object.
        warm = (64 << 20) // (64 + (size + 16 + 63) // 64 * 64) + 1000
        consumer = subprocess.Popen([os.path.join(tools, "tool_consume"), name, str(warm + n), "30000", "-q"],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        keys = ["bench/key-%d" % i for i in range(1024)]
        body = bytes(size)
        put = r.put
        for i in range(warm):
            if put(keys[i & 1023], body, -1):
                raise SystemExit("put failed")
        t0 = time.perf_counter()
        for i in range(n):
            if put(keys[i & 1023], body, -1):
                raise SystemExit("put failed")
        dt = time.perf_counter() - t0
        if consumer.wait(120) != 0:
            raise SystemExit("tool_consume did not read every message")
        return n / dt
    finally:
        r.close()
        os.unlink("/dev/shm/s3ring." + name)


def _reader(sock, n, size):
    got = 0
    for _ in range(n):
        got += len(sock.recv(size))
    os._exit(0 if got == n * size else 1)


def bench_socket(size, n):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    ctx = multiprocessing.get_context("fork")
    reader = ctx.Process(target=_reader, args=(b, n, size))
    reader.start()
    b.close()
    keys = ["bench/key-%d" % i for i in range(1024)]
    body = bytes(size)
    send = a.send
    t0 = time.perf_counter()
    for i in range(n):
        keys[i & 1023]  # the same loop shape as the s3ring loop
        send(body)
    dt = time.perf_counter() - t0
    reader.join(120)
    a.close()
    if reader.exitcode != 0:
        raise SystemExit("the socket reader did not read every message")
    return n / dt


def main():
    tools = sys.argv[1]
    as_json = "--json" in sys.argv
    n = int(sys.argv[sys.argv.index("--puts") + 1]) if "--puts" in sys.argv else 2000000
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    if not as_json:
        print("%-22s %6s %12s" % ("python", "size", "puts/s"))
    for size in (64, 1024):
        s = statistics.median(bench_s3ring(tools, size, n) for _ in range(reps))
        u = statistics.median(bench_socket(size, n) for _ in range(reps))
        for what, v in (("s3ring", s), ("unix_dgram_send", u)):
            if as_json:
                print(json.dumps({"binding": "python", "transport": what, "size": size, "puts_per_s": round(v)}))
            else:
                print("%-22s %6d %12s" % (what, size, "{:,.0f}".format(v)))
        if not as_json:
            print("  ratio s3ring/socket.send: %.2f" % (s / u))


if __name__ == "__main__":
    main()
