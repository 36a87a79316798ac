/* Bench.java -- put throughput, latency and allocation of the JVM binding,
 * against the JDK's ArrayBlockingQueue in the same run.
 *
 *   Bench TOOLS_DIR [--json] [--puts N] [--reps R]
 *
 * For 1 and 4 producer threads and 64 B and 1 KiB bodies: s3ring puts
 * (timeout -1) into a fresh default ring drained by tool_consume, a separate
 * process that reads and checks every byte, releasing as it goes (after one
 * untimed lap of the ring, so that no timed put pays for the first touch of
 * a page of the shm object); and, as
 * the baseline, ArrayBlockingQueue(4096).offer of a Pair(key, bytes) (a new
 * byte[] copy of the body, as the Channel of (key, message) pairs held),
 * drained by one consumer thread that reads every byte. Both use the same
 * precomputed keys. Every 16th put is timed with System.nanoTime (its own
 * cost, about 20-30 ns, is included); bytes per put come from
 * ThreadMXBean.getThreadAllocatedBytes of the producer threads. Each cell
 * is measured R times and the median run (by puts/s) is reported.
 *
 * The two timed loops are written out separately on purpose: one shared
 * loop calling either put through an interface would be a megamorphic call
 * site after the first cell, and the JIT would then measure its own
 * dispatch instead of the put.
 */
package org.s3ring;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.Locale;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.TimeUnit;

final class Bench {
    private static final com.sun.management.ThreadMXBean MX =
        (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
    private static final String[] KEYS = new String[1024];

    static {
        for (int i = 0; i < KEYS.length; i++) {
            KEYS[i] = "bench/key-" + i;
        }
    }

    private Bench() {
    }

    static final class Pair {
        final String key;
        final byte[] bytes;

        Pair(String key, byte[] bytes) {
            this.key = key;
            this.bytes = bytes;
        }
    }

    static final class Run {
        double putsPerS;
        long p50;
        long p99;
        double bytesPerPut;
    }

    interface PutLoop {
        /** n puts; every 16th latency into lat[]; returns allocated bytes. */
        long run(int n, long[] lat) throws Exception;
    }

    static Run measure(int threads, int n, PutLoop loop) throws Exception {
        long[][] lat = new long[threads][n / 16 + 1];
        long[] alloc = new long[threads];
        Exception[] err = new Exception[1];
        Thread[] ts = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            final int id = t;
            ts[t] = new Thread(() -> {
                try {
                    alloc[id] = loop.run(n, lat[id]);
                } catch (Exception e) {
                    err[0] = e;
                }
            });
        }
        long t0 = System.nanoTime();
        for (Thread th : ts) {
            th.start();
        }
        for (Thread th : ts) {
            th.join();
        }
        long dt = System.nanoTime() - t0;
        if (err[0] != null) {
            throw err[0];
        }
        long[] all = new long[threads * (n / 16)];
        long a = 0;
        for (int t = 0; t < threads; t++) {
            System.arraycopy(lat[t], 0, all, t * (n / 16), n / 16);
            a += alloc[t];
        }
        Arrays.sort(all);
        Run r = new Run();
        r.putsPerS = (double) threads * n / (dt / 1e9);
        r.p50 = all[all.length / 2];
        r.p99 = all[(int) (all.length * 0.99)];
        r.bytesPerPut = (double) a / ((double) threads * n);
        return r;
    }

    static Run s3ring(String tools, int threads, int size, int n) throws Exception {
        String name = "bench-java-" + ProcessHandle.current().pid();
        try (S3Ring ring = S3Ring.open(name, true)) {
            // One lap of the ring first, so that no timed put pays for the
            // first touch of a page of the shm object.
            int warm = (64 << 20) / (64 + (size + 16 + 63) / 64 * 64) + 1000;
            Process consumer = new ProcessBuilder(tools + "/tool_consume", name,
                Long.toString((long) threads * n + warm), "30000", "-q")
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            byte[] body = new byte[size];
            for (int i = 0; i < warm; i++) {
                check(ring.put(KEYS[i & 1023], body, 0, size, -1));
            }
            Run r = measure(threads, n, (count, lat) -> {
                long tid = Thread.currentThread().getId();
                long a0 = MX.getThreadAllocatedBytes(tid);
                for (int i = 0; i < count; i++) {
                    String k = KEYS[i & 1023];
                    if ((i & 15) == 0) {
                        long s = System.nanoTime();
                        int rc = ring.put(k, body, 0, size, -1);
                        lat[i >> 4] = System.nanoTime() - s;
                        check(rc);
                    } else {
                        check(ring.put(k, body, 0, size, -1));
                    }
                }
                return MX.getThreadAllocatedBytes(tid) - a0;
            });
            if (!consumer.waitFor(120, TimeUnit.SECONDS) || consumer.exitValue() != 0) {
                throw new IOException("tool_consume did not read every message");
            }
            return r;
        } finally {
            Files.deleteIfExists(Paths.get("/dev/shm/s3ring." + name));
        }
    }

    static void check(int rc) {
        if (rc != S3Ring.OK) {
            throw new IllegalStateException(S3Ring.strerror(rc));
        }
    }

    static Run queue(int threads, int size, int n) throws Exception {
        ArrayBlockingQueue<Pair> q = new ArrayBlockingQueue<>(4096);
        long total = (long) threads * n;
        long[] sum = new long[1];
        Thread consumer = new Thread(() -> {
            try {
                long s = 0;
                for (long i = 0; i < total; i++) {
                    Pair p = q.take();
                    s += p.key.length();
                    for (byte b : p.bytes) {
                        s += b;
                    }
                }
                sum[0] = s;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        consumer.start();
        byte[] body = new byte[size];
        Run r = measure(threads, n, (count, lat) -> {
            long tid = Thread.currentThread().getId();
            long a0 = MX.getThreadAllocatedBytes(tid);
            for (int i = 0; i < count; i++) {
                String k = KEYS[i & 1023];
                if ((i & 15) == 0) {
                    long s = System.nanoTime();
                    q.offer(new Pair(k, Arrays.copyOf(body, size)), 1, TimeUnit.DAYS);
                    lat[i >> 4] = System.nanoTime() - s;
                } else {
                    q.offer(new Pair(k, Arrays.copyOf(body, size)), 1, TimeUnit.DAYS);
                }
            }
            return MX.getThreadAllocatedBytes(tid) - a0;
        });
        consumer.join();
        return r;
    }

    public static void main(String[] args) throws Exception {
        String tools = args[0];
        boolean json = false;
        int n = 1_000_000;
        int reps = 3;
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("--json")) {
                json = true;
            } else if (args[i].equals("--puts")) {
                n = Integer.parseInt(args[++i]);
            } else if (args[i].equals("--reps")) {
                reps = Integer.parseInt(args[++i]);
            }
        }
        long timer = timerOverhead();
        // Warm-up: let the JIT compile both paths before anything is kept.
        s3ring(tools, 1, 64, 200_000);
        queue(1, 64, 200_000);
        if (json) {
            System.out.printf(Locale.ROOT, "{\"binding\":\"java\",\"nanotime_overhead_ns\":%d}%n", timer);
        } else {
            System.out.printf(Locale.ROOT, "latency: every 16th put timed with System.nanoTime (overhead %d ns, included)%n",
                timer);
            System.out.printf(Locale.ROOT, "%-22s %7s %6s %12s %8s %8s %10s%n", "java", "threads", "size",
                "puts/s", "p50 ns", "p99 ns", "bytes/put");
        }
        for (int threads : new int[] { 1, 4 }) {
            for (int size : new int[] { 64, 1024 }) {
                Run[] s = new Run[reps];
                Run[] b = new Run[reps];
                for (int i = 0; i < reps; i++) {
                    s[i] = s3ring(tools, threads, size, n);
                    b[i] = queue(threads, size, n);
                }
                Run sm = median(s);
                Run bm = median(b);
                print(json, "s3ring", threads, size, sm);
                print(json, "ArrayBlockingQueue", threads, size, bm);
                if (!json) {
                    System.out.printf(Locale.ROOT, "  ratio s3ring/ArrayBlockingQueue puts/s: %.2f%n",
                        sm.putsPerS / bm.putsPerS);
                }
            }
        }
    }

    /** The median cost of one System.nanoTime() pair, in ns. */
    static long timerOverhead() {
        long[] d = new long[100_001];
        for (int i = 0; i < d.length; i++) {
            long a = System.nanoTime();
            d[i] = System.nanoTime() - a;
        }
        Arrays.sort(d);
        return d[d.length / 2];
    }

    static Run median(Run[] r) {
        Run[] c = r.clone();
        Arrays.sort(c, (x, y) -> Double.compare(x.putsPerS, y.putsPerS));
        return c[c.length / 2];
    }

    static void print(boolean json, String what, int threads, int size, Run r) {
        if (json) {
            System.out.printf(Locale.ROOT, "{\"binding\":\"java\",\"transport\":\"%s\",\"threads\":%d,\"size\":%d,"
                + "\"puts_per_s\":%.0f,\"p50_ns\":%d,\"p99_ns\":%d,\"bytes_per_put\":%.2f}%n",
                what, threads, size, r.putsPerS, r.p50, r.p99, r.bytesPerPut);
        } else {
            System.out.printf(Locale.ROOT, "%-22s %7d %6d %,12.0f %8d %8d %10.2f%n", what, threads, size,
                r.putsPerS, r.p50, r.p99, r.bytesPerPut);
        }
    }
}
