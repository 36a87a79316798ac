"""bench.py -- puts/s of the Python binding against socket.send in the same run.

    bench.py TOOLS_DIR [--json] [--puts N] [--reps R]

At 64 B and 1 KiB: Ring.put (timeout -1) into a fresh default ring drained
by tool_consume, a separate process that reads and checks every byte
(after one untimed lap of the ring, so that no timed put pays for the first
touch of a page of the shm object); and,
as the baseline, socket.send of the same body on a Unix datagram socket
pair (system default buffers) whose other end is read by a separate
process, `s3ring-bench bindings --read-dgram` (BENCH: $S3RING_BENCH, or
TOOLS_DIR/../bin/s3ring-bench), which checks every datagram's length. Both
readers are C programs that read as fast as they can and sleep when there
is nothing to read. The reader's speed moves its sender's rate either way
(one that often sleeps costs the sender a wake-up per send; a slower one
fills the socket's queue and blocks it), so each side faces a reader of
the same kind; a Python reader gave the baseline from 12 % less to 45 %
more than this one, depending on the load. Same loop shape for both, one
producer, producer-side puts/s over N puts (2,000,000 by default: several laps of the ring at 64 B, so the rate
is sustained, bound by the consumer as much as by the put, as the socket's
is by its reader). Each cell runs R times and the median is reported.

The two are run in turns (s3ring, socket, socket, s3ring, ...), so that a
change in the machine's load during the run falls on both alike, and the
ratio reported is the median of the R paired ratios. Besides puts/s, each
line gives the producer's CPU time per put (user + system, from getrusage
over the timed loop), which a loaded machine inflates far less than the
wall-clock rate, and the 1-minute load average when the cell ended.
"""
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import time

import s3ring


def cpu_s():
    """This process's CPU time so far, user and system, in seconds."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


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
        c0, t0 = cpu_s(), time.perf_counter()
        for i in range(n):
            if put(keys[i & 1023], body, -1):
                raise SystemExit("put failed")
        dt, cpu = time.perf_counter() - t0, cpu_s() - c0
        if consumer.wait(120) != 0:
            raise SystemExit("tool_consume did not read every message")
        return n / dt, cpu / n
    finally:
        r.close()
        os.unlink("/dev/shm/s3ring." + name)


def bench_socket(bench, size, n):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    reader = subprocess.Popen([bench, "bindings", "--read-dgram", str(n), str(size)], stdin=b)
    b.close()
    keys = ["bench/key-%d" % i for i in range(1024)]
    body = bytes(size)
    send = a.send
    c0, t0 = cpu_s(), time.perf_counter()
    for i in range(n):
        keys[i & 1023]  # the same loop shape as the s3ring loop
        send(body)
    dt, cpu = time.perf_counter() - t0, cpu_s() - c0
    a.close()
    if reader.wait(120) != 0:
        raise SystemExit("the socket reader did not read every message")
    return n / dt, cpu / n


def main():
    tools = sys.argv[1]
    bench = os.environ.get("S3RING_BENCH") or os.path.join(tools, "..", "bin", "s3ring-bench")
    as_json = "--json" in sys.argv
    n = int(sys.argv[sys.argv.index("--puts") + 1]) if "--puts" in sys.argv else 2000000
    reps = int(sys.argv[sys.argv.index("--reps") + 1]) if "--reps" in sys.argv else 3
    if not as_json:
        print("%-22s %6s %12s %12s %6s" % ("python", "size", "puts/s", "cpu ns/put", "load"))
    for size in (64, 1024):
        runs = {"s3ring": [], "unix_dgram_send": []}
        ratios = []
        for rep in range(reps):
            # In turns, the order flipped every other repetition.
            order = (("s3ring", lambda: bench_s3ring(tools, size, n)),
                     ("unix_dgram_send", lambda: bench_socket(bench, size, n)))
            got = {what: f() for what, f in (order if rep % 2 == 0 else order[::-1])}
            for what, v in got.items():
                runs[what].append(v)
            ratios.append(got["s3ring"][0] / got["unix_dgram_send"][0])
        load = os.getloadavg()[0]
        ratio = statistics.median(ratios)
        for what, v in runs.items():
            rate = statistics.median(x[0] for x in v)
            cpu_ns = statistics.median(x[1] for x in v) * 1e9
            if as_json:
                cell = {"binding": "python", "transport": what, "size": size,
                        "puts_per_s": round(rate), "cpu_ns_per_put": round(cpu_ns), "load1": load}
                if what == "s3ring":
                    cell["ratio_to_socket"] = round(ratio, 2)
                print(json.dumps(cell))
            else:
                print("%-22s %6d %12s %12.0f %6.2f" % (what, size, "{:,.0f}".format(rate), cpu_ns, load))
        if not as_json:
            print("  ratio s3ring/socket.send: %.2f (median of %d paired runs; cpu per put: %.2f)" % (
                ratio, reps,
                statistics.median(x[1] for x in runs["unix_dgram_send"]) /
                statistics.median(x[1] for x in runs["s3ring"])))


if __name__ == "__main__":
    main()
