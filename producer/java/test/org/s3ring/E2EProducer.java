/* E2EProducer.java -- puts the test suite's deterministic messages from the JVM.
 *
 *   E2EProducer RING PREFIX COUNT
 *
 * Puts PREFIXp0/1 .. PREFIXp0/COUNT with the bodies of tests/helpers/testbody.c
 * (1 to 4096 bytes), so that tool_s3check can check the bucket byte for byte.
 * Waits up to 120 s for space per put (a busy machine slows the uploader);
 * exits 0 when every put committed.
 */
package org.s3ring;

final class E2EProducer {
    private E2EProducer() {
    }

    /** testbody_fill(): xorshift32 seeded from proc and seq. */
    static int fill(byte[] b, int proc, long seq, int minLen, int maxLen) {
        int s = (proc * (int) 2654435761L) ^ (int) (seq * 40503L) ^ (int) 0x9e3779b9L;
        if (s == 0) {
            s = 1;
        }
        int len = minLen;
        if (maxLen > minLen) {
            s = xorshift(s);
            len += (int) (Integer.toUnsignedLong(s) % (maxLen - minLen + 1));
        }
        for (int i = 0; i < len; i++) {
            s = xorshift(s);
            b[i] = (byte) s;
        }
        return len;
    }

    private static int xorshift(int x) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        return x;
    }

    public static void main(String[] args) {
        String prefix = args[1];
        long count = Long.parseLong(args[2]);
        byte[] buf = new byte[4096];
        try (S3Ring r = S3Ring.open(args[0])) {
            for (long i = 1; i <= count; i++) {
                int len = fill(buf, 0, i, 1, 4096);
                int rc = r.put(prefix + "p0/" + i, buf, 0, len, 120_000);
                if (rc != S3Ring.OK) {
                    System.err.println("E2EProducer: put " + i + ": " + S3Ring.strerror(rc));
                    System.exit(1);
                }
            }
        }
        System.out.println("E2EProducer: put " + count);
    }
}
