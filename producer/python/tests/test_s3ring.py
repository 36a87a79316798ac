"""test_s3ring.py -- pytest suite of the Python module s3ring, on real rings.

Each test gets its own ring in /dev/shm, removed afterwards. Where a test
needs the ring drained, the suite's C consumer (tool_consume, in
$S3RING_TOOLS) reads it and prints each record's key, length and CRC32C.
"""
import array
import errno
import multiprocessing
import os
import subprocess
import threading
import time

import pytest

import s3ring

TOOLS = os.environ.get("S3RING_TOOLS", "build/tests")


@pytest.fixture
def ring(request):
    name = "test-py-%d-%s" % (os.getpid(), request.node.name[:40])
    yield name
    try:
        os.unlink("/dev/shm/s3ring." + name)
    except FileNotFoundError:
        pass


def drain(name, count, idle_ms=5000):
    """Consumes count records; returns [(key, len, crc_hex)]."""
    out = subprocess.run([os.path.join(TOOLS, "tool_consume"), name, str(count), str(idle_ms)],
                         stdout=subprocess.PIPE, check=True, timeout=300).stdout
    return [tuple(line.split(b"\t")) for line in out.splitlines()]


def crc32c(data):
    crc = 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return b"%08x" % (crc ^ 0xFFFFFFFF)


def test_result_constants_are_the_c_api_errno_values():
    assert s3ring.OK == 0
    assert s3ring.FULL == -errno.EAGAIN
    assert s3ring.TIMED_OUT == -errno.ETIMEDOUT
    assert s3ring.TOO_LARGE == -errno.EMSGSIZE
    assert s3ring.INVALID_KEY == -errno.EINVAL
    assert s3ring.INCOMPATIBLE == -errno.EPROTO
    assert s3ring.CORRUPT == -errno.EBADMSG
    assert s3ring.RETIRED == -errno.ESTALE
    assert s3ring.strerror(s3ring.FULL) == "ring is full"
    assert s3ring.strerror(-12345)  # an unforeseen code still has a message


def test_put_accepts_any_contiguous_buffer_and_the_bytes_arrive(ring):
    numpy = pytest.importorskip("numpy")
    body = b"hello, s3ring"
    arr = numpy.arange(16, dtype=numpy.uint32)
    with s3ring.Ring(ring, create=True) as r:
        assert r.name == ring
        assert r.put("b/bytes", body) == s3ring.OK
        assert r.put("b/bytearray", bytearray(body)) == s3ring.OK
        assert r.put("b/memoryview", memoryview(body)[7:]) == s3ring.OK
        assert r.put("b/numpy", arr, timeout_ms=1000) == s3ring.OK
        assert r.put("b/empty", b"") == s3ring.OK
    assert r.closed
    got = drain(ring, 5)
    assert got == [
        (b"b/bytes", b"13", crc32c(body)),
        (b"b/bytearray", b"13", crc32c(body)),
        (b"b/memoryview", b"6", crc32c(body[7:])),
        (b"b/numpy", b"64", crc32c(arr.tobytes())),
        (b"b/empty", b"0", crc32c(b"")),
    ]


def test_non_contiguous_buffer_is_misuse(ring):
    numpy = pytest.importorskip("numpy")
    with s3ring.Ring(ring, create=True) as r:
        with pytest.raises((BufferError, TypeError, ValueError)):
            r.put("k", numpy.arange(16)[::2])
        with pytest.raises(TypeError):
            r.put("k", "a str is not bytes")
        with pytest.raises(TypeError):
            r.put(b"bytes-key", b"x")
        for bad in [lambda: r.put("k"), lambda: r.put("k", b"x", 1, 2), lambda: r.put("k", b"x", key="j"),
                    lambda: r.put("k", b"x", nope=1), lambda: r.put("k", b"x", "1")]:
            with pytest.raises(TypeError):
                bad()
        assert r.put(key="k", body=b"x", timeout_ms=5) == s3ring.OK


class BytesSub(bytes):
    pass


class StrSub(str):
    pass


def test_bytes_and_other_buffers_put_the_same_bytes_without_numpy(ring):
    # bytes is read in place; the rest go through the buffer protocol.
    body = bytes(range(256)) * 4
    bodies = [
        ("bytes", body),
        ("bytes-subclass", BytesSub(body)),
        ("bytearray", bytearray(body)),
        ("memoryview", memoryview(body)),
        ("memoryview-slice", memoryview(body)[100:900]),
        ("array", array.array("B", body)),
    ]
    with s3ring.Ring(ring, create=True) as r:
        for name, b in bodies:
            assert r.put("fast/" + name, b) == s3ring.OK
            assert r.put(key="kw/" + name, body=b, timeout_ms=100) == s3ring.OK
    got = drain(ring, 2 * len(bodies))
    want = []
    for name, b in bodies:
        raw = bytes(b)
        want.append((b"fast/" + name.encode(), str(len(raw)).encode(), crc32c(raw)))
        want.append((b"kw/" + name.encode(), str(len(raw)).encode(), crc32c(raw)))
    assert got == want


def test_non_contiguous_memoryview_is_misuse_without_numpy(ring):
    with s3ring.Ring(ring, create=True) as r:
        with pytest.raises(BufferError):
            r.put("k", memoryview(b"abcdef")[::2])
        with pytest.raises(TypeError):
            r.put("k", 12345)
        assert r.put("k", memoryview(b"abcdef")[::1]) == s3ring.OK


def test_ascii_non_ascii_and_subclassed_keys_reach_the_ring_alike(ring):
    keys = ["ascii/key", "caf\u00e9/key", StrSub("sub/key"), StrSub("sub/caf\u00e9")]
    with s3ring.Ring(ring, create=True) as r:
        for k in keys:
            assert r.put(k, b"x") == s3ring.OK
        for bad in ["nul/\x00", "caf\u00e9/\x00x", StrSub("sub/\x00")]:
            assert r.put(bad, b"x") == s3ring.INVALID_KEY, repr(bad)
            assert r.put(bad, bytearray(b"x")) == s3ring.INVALID_KEY, repr(bad)
    got = drain(ring, len(keys))
    assert [g[0] for g in got] == [str(k).encode("utf-8") for k in keys]


def test_results_are_shared_ints_so_a_refused_put_allocates_none(ring):
    # CPython caches only -5 to 256; FULL, TOO_LARGE and INVALID_KEY come
    # from a table made at import, the same object every time.
    with s3ring.Ring(ring, create=True) as r:
        big = bytes(r.max_body(8) - 256)
        while r.put("fill", big) == s3ring.OK:
            pass
        assert r.put("fill", big) is r.put("fill", bytearray(b"x") * len(big))
        assert r.put("fill", big) == s3ring.FULL
        assert r.put("", b"x") is r.put("", bytearray(b"x"))
        assert r.put("", b"x") == s3ring.INVALID_KEY
        huge = bytes(r.max_body(3) + 1)
        assert r.put("big", huge) is r.put("big", memoryview(huge))
        assert r.put("big", huge) == s3ring.TOO_LARGE


def test_a_bytearray_cannot_be_resized_while_its_put_waits(ring):
    # The GIL is released while the put waits, so another thread runs: the
    # exported buffer keeps the bytearray's storage where the put reads it.
    # The put waits without a deadline until the ring is drained.
    with s3ring.Ring(ring, create=True) as r:
        body = bytearray(b"w" * 1000)
        n = 0
        for fill in (bytes(r.max_body(8) - 256), bytes(len(body))):
            while r.put("fill", fill) == s3ring.OK:
                n += 1
        res = []
        t = threading.Thread(target=lambda: res.append(r.put("wait", body, timeout_ms=-1)))
        t.start()
        refused = False
        while not refused and t.is_alive():
            try:
                body.extend(b"x")
                del body[-1:]
            except BufferError:
                refused = True
            time.sleep(0.001)
        got = drain(ring, n + 1)
        t.join()
        assert refused
        assert res == [s3ring.OK]
        assert got[-1] == (b"wait", b"1000", crc32c(b"w" * 1000))
        body.extend(b"x")  # released once the put returned


def dropped_full(name):
    shmstat = os.path.join(TOOLS, "..", "bin", "shmstat")
    out = subprocess.run([shmstat, "--ring", name, "--json"], stdout=subprocess.PIPE,
                         check=True, timeout=60).stdout
    import json
    return json.loads(out)["dropped_full"]


def test_a_put_that_waits_for_space_and_succeeds_counts_no_drop(ring):
    with s3ring.Ring(ring, create=True) as r:
        big = bytes(r.max_body(8) - 256)
        n = 0
        while r.put("fill", big) == s3ring.OK:
            n += 1
        before = dropped_full(ring)     # the FULL just returned counts
        res = []
        t = threading.Thread(target=lambda: res.append(r.put("wait", b"w", timeout_ms=-1)))
        t.start()
        time.sleep(0.05)
        drain(ring, n + 1)
        t.join()
        assert res == [s3ring.OK]
        assert dropped_full(ring) == before


def test_keys_outside_the_bmp_reach_the_ring_as_utf8(ring):
    key = "emoji/\U0001F600/\U0001D11E/caf\u00e9"
    with s3ring.Ring(ring, create=True) as r:
        assert r.put(key, b"1") == s3ring.OK
        assert r.put("\U0001F600" * 256, b"2") == s3ring.OK  # 1024 bytes
        assert r.put("\U0001F600" * 256 + "a", b"3") == s3ring.INVALID_KEY
    got = drain(ring, 2)
    assert got[0][0] == key.encode("utf-8")
    assert got[1][0] == ("\U0001F600" * 256).encode("utf-8")


def test_bad_keys_are_an_invalid_key_result(ring):
    with s3ring.Ring(ring, create=True) as r:
        for key in ["", "lone/\udc00", "lone/\ud83d", "nul/\x00x", "ctl/\n", "x" * 1025]:
            assert r.put(key, b"x") == s3ring.INVALID_KEY, repr(key)
        assert r.put("x" * 1024, b"x") == s3ring.OK


def test_full_ring_returns_full_and_a_wait_times_out(ring):
    with s3ring.Ring(ring, create=True) as r:
        big = bytes(r.max_body(8) - 256)
        n = 0
        while True:
            rc = r.put("full/%d" % n, big)
            if rc != s3ring.OK:
                break
            n += 1
            assert n < 1000, "the ring never filled"
        assert rc == s3ring.FULL
        t0 = time.monotonic()
        assert r.put("full/wait", big, timeout_ms=50) == s3ring.TIMED_OUT
        assert time.monotonic() - t0 >= 0.045


def test_body_over_max_message_is_too_large(ring):
    with s3ring.Ring(ring, create=True) as r:
        m = r.max_body(3)
        assert r.put("big", bytes(m + 1)) == s3ring.TOO_LARGE
        assert r.put("big", bytes(m)) == s3ring.OK


def test_missing_ring_names_the_ring_and_how_to_create_it(ring):
    with pytest.raises(FileNotFoundError) as e:
        s3ring.Ring(ring)
    msg = str(e.value)
    assert "'%s'" % ring in msg and "s3ring-uploader --ring " + ring in msg and "create=True" in msg


def test_ring_of_another_layout_is_refused(ring):
    s3ring.Ring(ring, create=True).close()
    with open("/dev/shm/s3ring." + ring, "r+b") as f:
        f.seek(8)
        v = int.from_bytes(f.read(4), "little")
        f.seek(8)
        f.write((v + 1).to_bytes(4, "little"))
    with pytest.raises(OSError) as e:
        s3ring.Ring(ring)
    assert "layout version" in str(e.value)


def test_corrupt_control_words_are_a_corrupt_result(ring):
    with s3ring.Ring(ring, create=True) as r:
        assert r.put("before", b"1") == s3ring.OK
        with open("/dev/shm/s3ring." + ring, "r+b") as f:
            f.seek(128)
            tail = int.from_bytes(f.read(8), "little")
            f.seek(256)
            f.write((tail + (1 << 40)).to_bytes(8, "little"))
        assert r.put("after", b"1") == s3ring.CORRUPT


def test_put_into_a_retired_ring_is_a_retired_result(ring):
    with s3ring.Ring(ring, create=True) as r:
        assert r.put("before", b"1") == s3ring.OK
        # The uploader's mark for a removed or replaced ring: the 32-bit
        # word after tail (ring_layout.h, "retired").
        with open("/dev/shm/s3ring." + ring, "r+b") as f:
            f.seek(136)
            f.write((1).to_bytes(4, "little"))
        assert r.put("after", b"1") == s3ring.RETIRED
        assert "open it again" in s3ring.strerror(s3ring.RETIRED)


def test_closed_ring_is_misuse(ring):
    r = s3ring.Ring(ring, create=True)
    r.close()
    r.close()
    with pytest.raises(ValueError):
        r.put("k", b"x")
    with pytest.raises(ValueError):
        r.max_body(1)


def test_gil_is_released_while_a_put_waits(ring):
    with s3ring.Ring(ring, create=True) as r:
        big = bytes(r.max_body(8) - 256)
        while r.put("fill", big) == s3ring.OK:
            pass
        ticks = []
        stop = threading.Event()

        def ticker():
            while not stop.is_set():
                ticks.append(1)
                time.sleep(0.001)

        t = threading.Thread(target=ticker)
        t.start()
        try:
            assert r.put("wait", big, timeout_ms=300) == s3ring.TIMED_OUT
        finally:
            stop.set()
            t.join()
        # With the GIL held for 300 ms the ticker could not have run at all.
        assert len(ticks) > 20, len(ticks)


def test_close_while_another_thread_waits_is_safe(ring):
    r = s3ring.Ring(ring, create=True)
    big = bytes(r.max_body(8) - 256)
    while r.put("fill", big) == s3ring.OK:
        pass
    res = []
    t = threading.Thread(target=lambda: res.append(r.put("wait", big, timeout_ms=300)))
    t.start()
    time.sleep(0.05)
    r.close()
    t.join()
    assert res == [s3ring.TIMED_OUT]
    assert r.closed


def _producer(name, proc, count):
    with s3ring.Ring(name) as r:
        for i in range(count):
            body = bytes([proc]) * (1 + i % 200)
            rc = r.put("p%d/%d" % (proc, i), body, timeout_ms=30000)
            if rc != s3ring.OK:
                raise SystemExit("put: " + s3ring.strerror(rc))


def test_several_processes_put_at_once(ring):
    procs, each = 4, 5000
    s3ring.Ring(ring, create=True).close()
    consumer = subprocess.Popen([os.path.join(TOOLS, "tool_consume"), ring, str(procs * each), "30000"],
                                stdout=subprocess.PIPE)
    ctx = multiprocessing.get_context("spawn")
    ps = [ctx.Process(target=_producer, args=(ring, p, each)) for p in range(procs)]
    for p in ps:
        p.start()
    for p in ps:
        p.join(120)
        assert p.exitcode == 0
    out, _ = consumer.communicate(timeout=120)
    assert consumer.returncode == 0
    keys = set()
    for line in out.splitlines():
        key, length, crc = line.split(b"\t")
        proc, i = key[1:].split(b"/")
        assert int(length) == 1 + int(i) % 200
        assert crc == crc32c(bytes([int(proc)]) * int(length))
        keys.add(key)
    assert len(keys) == procs * each
