"""produce.py -- puts the test suite's deterministic messages from Python.

    produce.py RING PREFIX COUNT

Puts PREFIXp0/1 .. PREFIXp0/COUNT with the bodies of tests/helpers/testbody.c
(1 to 4096 bytes), so that tool_s3check can check the bucket byte for byte.
Waits up to 120 s for space per put (a busy machine slows the uploader);
exits 0 when every put committed.
"""
import sys

import s3ring

M32 = 0xFFFFFFFF


def fill(buf, proc, seq, minlen, maxlen):
    """testbody_fill(): xorshift32 seeded from proc and seq; returns the length."""
    s = ((proc * 2654435761) ^ (seq * 40503) ^ 0x9E3779B9) & M32 or 1

    def nxt():
        nonlocal s
        s ^= (s << 13) & M32
        s ^= s >> 17
        s ^= (s << 5) & M32
        return s

    n = minlen + (nxt() % (maxlen - minlen + 1) if maxlen > minlen else 0)
    for i in range(n):
        buf[i] = nxt() & 0xFF
    return n


def main():
    ring, prefix, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    buf = bytearray(4096)
    view = memoryview(buf)
    with s3ring.Ring(ring) as r:
        for i in range(1, count + 1):
            n = fill(buf, 0, i, 1, 4096)
            rc = r.put("%sp0/%d" % (prefix, i), view[:n], timeout_ms=120000)
            if rc != s3ring.OK:
                sys.exit("produce.py: put %d: %s" % (i, s3ring.strerror(rc)))
    print("produce.py: put", count)


if __name__ == "__main__":
    main()
