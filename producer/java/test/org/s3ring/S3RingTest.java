/* S3RingTest.java -- JUnit 5 tests of org.s3ring.S3Ring against real rings.
 *
 * Every test works on its own ring in /dev/shm, removed afterwards. A ring
 * is drained, where a test needs it, by the suite's C consumer
 * (tool_consume, from -Ds3ring.tools=DIR), which prints each record's key,
 * length and CRC32C. The kill -9 test starts a second JVM with the class
 * path in -Ds3ring.test.classpath.
 */
package org.s3ring;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.RandomAccessFile;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

class S3RingTest {
    private static final AtomicInteger SEQ = new AtomicInteger();
    private String ring;

    @BeforeEach
    void name() {
        ring = "test-java-" + ProcessHandle.current().pid() + "-" + SEQ.incrementAndGet();
    }

    @AfterEach
    void unlink() throws IOException {
        Files.deleteIfExists(shm(ring));
    }

    static Path shm(String name) {
        return Paths.get("/dev/shm/s3ring." + name);
    }

    static String tool(String name) {
        String dir = System.getProperty("s3ring.tools", "build/tests");
        return new File(dir, name).getPath();
    }

    /**
     * Starts tool_consume on the ring: it consumes count records (0: any
     * number) and releases each at once, and stops after idleMs without one.
     * Its stdout goes to out (or is discarded).
     */
    static Process drainer(String name, long count, long idleMs, File out) throws IOException {
        ProcessBuilder pb = new ProcessBuilder(tool("tool_consume"), name, Long.toString(count),
            Long.toString(idleMs));
        if (out == null) {
            pb.command().add("-q");
        }
        pb.redirectOutput(out == null ? ProcessBuilder.Redirect.DISCARD : ProcessBuilder.Redirect.to(out));
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        return pb.start();
    }

    static void assertDrained(Process d) throws InterruptedException {
        assertTrue(d.waitFor(120, TimeUnit.SECONDS), "drainer still running");
        assertEquals(0, d.exitValue(), "drainer did not consume every record");
    }

    static MappedByteBuffer mapHeader(String name) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(shm(name).toFile(), "rw")) {
            MappedByteBuffer m = f.getChannel().map(FileChannel.MapMode.READ_WRITE, 0, 4096);
            m.order(ByteOrder.LITTLE_ENDIAN);
            return m;
        }
    }

    static String crcHex(byte[] b, int off, int len) {
        CRC32C c = new CRC32C();
        c.update(b, off, len);
        return String.format("%08x", c.getValue());
    }

    @Test
    void put_commits_and_the_consumer_reads_the_same_bytes() throws Exception {
        byte[] body = "hello, s3ring".getBytes(StandardCharsets.UTF_8);
        ByteBuffer direct = ByteBuffer.allocateDirect(32);
        direct.put(body).flip();
        direct.position(7);
        try (S3Ring r = S3Ring.open(ring, true)) {
            assertEquals(ring, r.name());
            assertEquals(S3Ring.OK, r.put("a/array", body, 5000));
            assertEquals(S3Ring.OK, r.put("a/slice", body, 7, 6, 0));
            assertEquals(S3Ring.OK, r.put("a/direct", direct, 0));
            assertEquals(7, direct.position(), "the buffer's position is left alone");
            assertEquals(S3Ring.OK, r.tryPut("a/heap", ByteBuffer.wrap(body, 7, 6)));
            assertEquals(S3Ring.OK, r.tryPut("a/empty", new byte[0]));
        }
        File out = File.createTempFile("s3ring-drain", ".txt");
        try {
            assertDrained(drainer(ring, 5, 5000, out));
            List<String> got = Files.readAllLines(out.toPath());
            assertEquals(List.of(
                "a/array\t13\t" + crcHex(body, 0, 13),
                "a/slice\t6\t" + crcHex(body, 7, 6),
                "a/direct\t6\t" + crcHex(body, 7, 6),
                "a/heap\t6\t" + crcHex(body, 7, 6),
                "a/empty\t0\t00000000"), got);
        } finally {
            out.delete();
        }
    }

    @Test
    void full_ring_is_a_return_value_and_a_wait_times_out() {
        try (S3Ring r = S3Ring.open(ring, true)) {
            byte[] big = new byte[(int) r.maxBody(8) - 256];
            int rc;
            int n = 0;
            while ((rc = r.tryPut("full/" + n, big)) == S3Ring.OK) {
                n++;
                assertTrue(n < 1000, "the ring never filled");
            }
            assertEquals(S3Ring.FULL, rc);
            assertTrue(n > 10, "only " + n + " messages fitted");
            assertEquals(Result.FULL, Result.of(rc));
            long t0 = System.nanoTime();
            assertEquals(S3Ring.TIMED_OUT, r.put("full/wait", big, 50));
            assertTrue(System.nanoTime() - t0 >= TimeUnit.MILLISECONDS.toNanos(45), "returned before its timeout");
            assertEquals("ring is full", S3Ring.strerror(S3Ring.FULL));
        }
    }

    @Test
    void body_over_max_message_is_too_large() {
        try (S3Ring r = S3Ring.open(ring, true)) {
            int max = (int) r.maxBody(3);
            assertEquals(S3Ring.TOO_LARGE, r.tryPut("big", new byte[max + 1]));
            assertEquals(S3Ring.OK, r.tryPut("big", new byte[max]));
            assertEquals(Result.TOO_LARGE, Result.of(S3Ring.TOO_LARGE));
        }
    }

    @Test
    void keys_outside_the_bmp_reach_the_ring_as_real_utf8() throws Exception {
        String key = "emoji/\uD83D\uDE00/\uD834\uDD1E/caf\u00e9/\u4e2d";
        String max = "\uD83D\uDE00".repeat(256); // 1024 bytes of UTF-8
        try (S3Ring r = S3Ring.open(ring, true)) {
            assertEquals(S3Ring.OK, r.tryPut(key, new byte[] { 1 }));
            assertEquals(S3Ring.OK, r.tryPut(max, new byte[] { 2 }));
            assertEquals(S3Ring.INVALID_KEY, r.tryPut(max + "a", new byte[] { 3 }), "1025 bytes");
        }
        File out = File.createTempFile("s3ring-drain", ".txt");
        try {
            assertDrained(drainer(ring, 2, 5000, out));
            byte[] raw = Files.readAllBytes(out.toPath());
            String text = new String(raw, StandardCharsets.UTF_8);
            String[] lines = text.split("\n");
            assertEquals(key, lines[0].split("\t")[0]);
            assertEquals(max, lines[1].split("\t")[0]);
            // Modified UTF-8 would have written the emoji as two 3-byte surrogates.
            byte[] want = (key + "\t").getBytes(StandardCharsets.UTF_8);
            byte[] head = new byte[want.length];
            System.arraycopy(raw, 0, head, 0, want.length);
            assertArrayEquals(want, head);
        } finally {
            out.delete();
        }
    }

    @Test
    void bad_keys_are_an_invalid_key_result_not_an_exception() {
        try (S3Ring r = S3Ring.open(ring, true)) {
            byte[] b = { 1 };
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("", b), "empty");
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("lone/\uD83D", b), "lone high surrogate at the end");
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("lone/\uD83Dx", b), "high surrogate not followed by a low one");
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("lone/\uDE00", b), "lone low surrogate");
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("nul/\u0000", b), "NUL");
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("ctl/\n", b), "control character");
            assertEquals(S3Ring.INVALID_KEY, r.tryPut("x".repeat(1025), b), "1025 bytes");
            assertEquals(S3Ring.OK, r.tryPut("x".repeat(1024), b), "1024 bytes");
            assertEquals(S3Ring.INVALID_KEY, r.put("lone/\uDE00", ByteBuffer.allocateDirect(1), 0), "direct buffer");
            assertEquals(Result.INVALID_KEY, Result.of(r.tryPut("", b)));
        }
    }

    @Test
    void misuse_throws() {
        S3Ring r = S3Ring.open(ring, true);
        assertThrows(NullPointerException.class, () -> r.tryPut(null, new byte[1]));
        assertThrows(NullPointerException.class, () -> r.tryPut("k", (byte[]) null));
        assertThrows(NullPointerException.class, () -> r.tryPut("k", (ByteBuffer) null));
        assertThrows(IndexOutOfBoundsException.class, () -> r.put("k", new byte[4], 3, 2, 0));
        assertThrows(IndexOutOfBoundsException.class, () -> r.put("k", new byte[4], -1, 1, 0));
        assertThrows(IllegalArgumentException.class,
            () -> r.tryPut("k", ByteBuffer.wrap(new byte[4]).asReadOnlyBuffer()));
        r.close();
        r.close();
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> r.tryPut("k", new byte[1]));
        assertTrue(e.getMessage().contains("closed") && e.getMessage().contains(ring), e.getMessage());
    }

    @Test
    void close_while_another_thread_waits_takes_effect_when_it_returns() throws Exception {
        S3Ring r = S3Ring.open(ring, true);
        byte[] big = new byte[(int) r.maxBody(8) - 256];
        while (r.tryPut("fill", big) == S3Ring.OK) {
            continue;
        }
        int[] rc = new int[1];
        Thread t = new Thread(() -> rc[0] = r.put("wait", big, 300));
        t.start();
        Thread.sleep(50);
        r.close();
        assertThrows(IllegalStateException.class, () -> r.tryPut("k", new byte[1]));
        t.join();
        assertEquals(S3Ring.TIMED_OUT, rc[0]);
        assertThrows(IllegalStateException.class, () -> r.tryPut("k", new byte[1]));
        try (S3Ring again = S3Ring.open(ring)) {
            assertEquals(S3Ring.FULL, again.tryPut("k", big), "the ring itself is untouched");
        }
    }

    @Test
    void missing_ring_names_the_ring_and_how_to_create_it() {
        S3RingException e = assertThrows(S3RingException.class, () -> S3Ring.open(ring));
        assertEquals(2, e.errno());
        assertTrue(e.getMessage().contains("'" + ring + "'"), e.getMessage());
        assertTrue(e.getMessage().contains("s3ring-uploader --ring " + ring), e.getMessage());
        assertTrue(e.getMessage().contains("create"), e.getMessage());
    }

    @Test
    void ring_of_another_layout_is_refused_as_incompatible() throws Exception {
        S3Ring.open(ring, true).close();
        MappedByteBuffer m = mapHeader(ring);
        m.putInt(8, m.getInt(8) + 1); // layout_version
        S3RingException e = assertThrows(S3RingException.class, () -> S3Ring.open(ring));
        assertEquals(-S3Ring.INCOMPATIBLE, e.errno());
        assertTrue(e.getMessage().contains("layout version"), e.getMessage());
        assertEquals(Result.INCOMPATIBLE, Result.of(S3Ring.INCOMPATIBLE));
    }

    @Test
    void corrupt_control_words_are_a_corrupt_result() throws Exception {
        try (S3Ring r = S3Ring.open(ring, true)) {
            assertEquals(S3Ring.OK, r.tryPut("before", new byte[] { 1 }));
            MappedByteBuffer m = mapHeader(ring);
            m.putLong(256, m.getLong(128) + (1L << 40)); // head beyond tail
            assertEquals(S3Ring.CORRUPT, r.tryPut("after", new byte[] { 1 }));
            assertEquals(Result.CORRUPT, Result.of(S3Ring.CORRUPT));
            assertTrue(S3Ring.strerror(S3Ring.CORRUPT).startsWith("ring is corrupt"),
                S3Ring.strerror(S3Ring.CORRUPT));
        }
    }

    @Test
    void put_into_a_retired_ring_is_a_retired_result() throws Exception {
        try (S3Ring r = S3Ring.open(ring, true)) {
            assertEquals(S3Ring.OK, r.tryPut("before", new byte[] { 1 }));
            MappedByteBuffer m = mapHeader(ring);
            // The uploader's mark for a removed or replaced ring: the
            // 32-bit word after tail (ring_layout.h, "retired").
            m.order(java.nio.ByteOrder.LITTLE_ENDIAN).putInt(136, 1);
            assertEquals(S3Ring.RETIRED, r.tryPut("after", new byte[] { 1 }));
            assertTrue(S3Ring.strerror(S3Ring.RETIRED).contains("open it again"),
                S3Ring.strerror(S3Ring.RETIRED));
        }
    }

    @Test
    void retired_and_unforeseen_codes_have_their_own_results() {
        assertEquals(Result.RETIRED, Result.of(S3Ring.RETIRED));
        assertEquals(Result.OK, Result.of(S3Ring.OK));
        assertEquals(Result.TIMED_OUT, Result.of(S3Ring.TIMED_OUT));
        assertEquals(Result.ERROR, Result.of(-5));
        assertEquals(Result.ERROR, Result.of(-12345));
        assertTrue(S3Ring.strerror(-12345).length() > 0);
    }

    @Test
    void many_threads_share_one_handle() throws Exception {
        final int threads = 8;
        final int each = 20_000;
        File out = File.createTempFile("s3ring-drain", ".txt");
        try (S3Ring r = S3Ring.open(ring, true)) {
            Process d = drainer(ring, (long) threads * each, 30_000, out);
            List<Thread> ts = new ArrayList<>();
            AtomicInteger bad = new AtomicInteger();
            for (int t = 0; t < threads; t++) {
                final int id = t;
                Thread th = new Thread(() -> {
                    byte[] body = new byte[100];
                    for (int i = 0; i < each; i++) {
                        body[i % body.length] = (byte) i;
                        if (r.put("t" + id + "/" + i, body, 0, 1 + i % body.length, 60_000) != S3Ring.OK) {
                            bad.incrementAndGet();
                        }
                    }
                });
                th.start();
                ts.add(th);
            }
            for (Thread th : ts) {
                th.join();
            }
            assertEquals(0, bad.get(), "puts that did not commit");
            assertDrained(d);
        }
        try (BufferedReader br = Files.newBufferedReader(out.toPath())) {
            Set<String> keys = new HashSet<>();
            String line;
            while ((line = br.readLine()) != null) {
                String[] f = line.split("\t");
                int i = Integer.parseInt(f[0].substring(f[0].indexOf('/') + 1));
                assertEquals(1 + i % 100, Integer.parseInt(f[1]), line);
                assertTrue(keys.add(f[0]), "duplicate " + f[0]);
            }
            assertEquals(threads * each, keys.size());
        } finally {
            out.delete();
        }
    }

    /** n puts of body (or of direct) under keys in turn; stops at the first failure. Returns the puts done. */
    static long putMany(S3Ring r, String[] keys, byte[] body, ByteBuffer direct, int n) {
        for (int i = 0; i < n; i++) {
            int rc = body != null ? r.put(keys[i & 1023], body, 0, body.length, 10_000)
                : r.put(keys[i & 1023], direct, 10_000);
            if (rc != S3Ring.OK) {
                System.err.println("put " + i + ": " + S3Ring.strerror(rc));
                return i;
            }
        }
        return n;
    }

    @Test
    void put_allocates_nothing_on_the_heap() throws Exception {
        final int warm = 200_000;
        final int n = 1_000_000;
        com.sun.management.ThreadMXBean mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long tid = Thread.currentThread().getId();
        String[] keys = new String[1024];
        for (int i = 0; i < keys.length; i++) {
            keys[i] = "alloc/\uD83D\uDE00/" + i;
        }
        byte[] body = new byte[64];
        ByteBuffer direct = ByteBuffer.allocateDirect(64);
        try (S3Ring r = S3Ring.open(ring, true)) {
            Process d = drainer(ring, 2L * (warm + n), 30_000, null);
            long ok = putMany(r, keys, body, null, warm) + putMany(r, keys, null, direct, warm);
            long a0 = mx.getThreadAllocatedBytes(tid);
            ok += putMany(r, keys, body, null, n);
            long a1 = mx.getThreadAllocatedBytes(tid);
            ok += putMany(r, keys, null, direct, n);
            long a2 = mx.getThreadAllocatedBytes(tid);
            assertEquals(2L * (warm + n), ok, "puts that did not commit");
            assertDrained(d);
            System.out.println("figure: java_alloc puts=" + n + " array_bytes=" + (a1 - a0)
                + " direct_bytes=" + (a2 - a1));
            // Any allocation per put would be at least one 16-byte object
            // each time: 16,000,000 bytes. The threshold only leaves room for
            // the measuring calls themselves.
            assertTrue(a1 - a0 < 1024, (a1 - a0) + " bytes allocated by " + n + " array puts");
            assertTrue(a2 - a1 < 1024, (a2 - a1) + " bytes allocated by " + n + " direct puts");
        }
    }

    @Test
    void a_jvm_killed_mid_stream_leaves_a_ring_that_carries_on() throws Exception {
        S3Ring.open(ring, true).close();
        String java = Paths.get(System.getProperty("java.home"), "bin", "java").toString();
        ProcessBuilder pb = new ProcessBuilder(java, "-Ds3ring.library=" + System.getProperty("s3ring.library", ""),
            "-cp", System.getProperty("s3ring.test.classpath"), "org.s3ring.KillChild", ring);
        pb.redirectError(ProcessBuilder.Redirect.INHERIT);
        Process child = pb.start();
        Set<String> committed = new HashSet<>();
        try (BufferedReader br = new BufferedReader(new InputStreamReader(child.getInputStream(),
            StandardCharsets.UTF_8))) {
            String line;
            while (committed.size() < 5000 && (line = br.readLine()) != null) {
                committed.add(line);
            }
            // kill -9 itself: Process.destroyForcibly() would also close our end of its stdout.
            assertEquals(0, new ProcessBuilder("kill", "-KILL", Long.toString(child.pid())).start().waitFor());
            assertTrue(child.waitFor(30, TimeUnit.SECONDS));
            while ((line = br.readLine()) != null) {
                committed.add(line);
            }
        }
        assertEquals(137, child.exitValue(), "the child was killed by SIGKILL");
        assertTrue(committed.size() >= 5000, "child committed only " + committed.size());
        try (S3Ring r = S3Ring.open(ring)) {
            for (int i = 0; i < 1000; i++) {
                assertEquals(S3Ring.OK, r.put("after/" + i, new byte[] { (byte) i }, 5000));
            }
        }
        // Everything the child reported committed and everything put after it
        // is there; at most one record (the one it was writing) is lost.
        File out = File.createTempFile("s3ring-drain", ".txt");
        try {
            assertDrained(drainer(ring, committed.size() + 1000, 30_000, out));
            File rest = File.createTempFile("s3ring-drain", ".txt");
            Process d2 = drainer(ring, 0, 1_000, rest);
            d2.waitFor(60, TimeUnit.SECONDS);
            List<String> lines = new ArrayList<>(Files.readAllLines(out.toPath()));
            lines.addAll(Files.readAllLines(rest.toPath()));
            rest.delete();
            Set<String> seen = new HashSet<>();
            for (String l : lines) {
                seen.add(l.split("\t")[0]);
            }
            for (String k : committed) {
                assertTrue(seen.contains(k), "lost " + k);
            }
            for (int i = 0; i < 1000; i++) {
                assertTrue(seen.contains("after/" + i), "lost after/" + i);
            }
            assertTrue(lines.size() <= committed.size() + 1000 + 64, lines.size() + " records");
        } finally {
            out.delete();
        }
    }
}
