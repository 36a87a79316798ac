/* S3Ring.java -- a producer handle on an s3ring ring, for the JVM.
 *
 * The put methods return the C API's result unchanged: OK (0) or a negative
 * errno, FULL among them, because a full ring is the ordinary signal that
 * the uploader is behind. Only misuse throws: a null argument, bounds
 * outside the array, a closed handle, or a ring that cannot be opened. A
 * put allocates nothing on the Java heap; see s3ring_jni.c.
 *
 * It is a Closeable (hence AutoCloseable) so that Kotlin's use {} works
 * with the plain kotlin-stdlib of Kotlin 1.3 as well.
 *
 * Closing is safe against puts running in other threads: each put holds a
 * use count, close() marks the handle closed, and whoever drops the last use
 * (close itself, or the last put still inside) releases the native handle,
 * exactly once.
 */
package org.s3ring;

import java.io.Closeable;
import java.nio.ByteBuffer;
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater;

public final class S3Ring implements Closeable {
    /** Committed: the uploader will deliver it. */
    public static final int OK = 0;
    /** The ring is full and the timeout was 0 (-EAGAIN); counted as a drop. */
    public static final int FULL = -11;
    /** The ring stayed full until the timeout, or the put stalled and was given up (-ETIMEDOUT). */
    public static final int TIMED_OUT = -110;
    /** Key plus body is larger than the ring's max_message (-EMSGSIZE). */
    public static final int TOO_LARGE = -90;
    /** Bad key: empty, over 1024 bytes of UTF-8, a lone surrogate, NUL or a control character (-EINVAL). */
    public static final int INVALID_KEY = -22;
    /** The ring has another layout version than this library (-EPROTO). */
    public static final int INCOMPATIBLE = -71;
    /** The ring's control words are corrupt, or it was truncated under the put (-EBADMSG). */
    public static final int CORRUPT = -74;
    /** The ring was retired (removed or replaced): open it again (-ESTALE). */
    public static final int RETIRED = -116;

    /** Flag for {@link #open(String, boolean)}: create the ring at its default geometry if absent. */
    private static final int CREATE = 1;
    private static final int CLOSED = Integer.MIN_VALUE;
    private static final AtomicIntegerFieldUpdater<S3Ring> USES =
        AtomicIntegerFieldUpdater.newUpdater(S3Ring.class, "uses");

    static {
        String path = System.getProperty("s3ring.library");
        if (path != null && !path.isEmpty()) {
            System.load(path);
        } else {
            System.loadLibrary("s3ring_jni");
        }
    }

    private final long handle;
    private final String name;
    /** Puts in progress, plus CLOSED once close() was called. */
    private volatile int uses;

    private S3Ring(long handle, String name) {
        this.handle = handle;
        this.name = name;
    }

    /** Opens the ring named by $S3RING_RING, or "default". */
    public static S3Ring open() {
        return open(null, false);
    }

    /** Opens an existing ring. */
    public static S3Ring open(String name) {
        return open(name, false);
    }

    /**
     * Opens ring {@code name} (null: $S3RING_RING, or "default"); with
     * {@code create}, creates it at the default geometry if it is absent.
     *
     * @throws S3RingException if it cannot be opened; the message names the
     *         ring and, when it does not exist, how to create it
     */
    public static S3Ring open(String name, boolean create) {
        String shown = name;
        if (shown == null) {
            shown = System.getenv("S3RING_RING");
            if (shown == null || shown.isEmpty()) {
                shown = "default";
            }
        }
        long h = nOpen(name, create ? CREATE : 0);
        if (h < 0) {
            throw S3RingException.forOpen(shown, (int) -h, nStrerror((int) h));
        }
        return new S3Ring(h, shown);
    }

    /** The ring's name. */
    public String name() {
        return name;
    }

    /**
     * Puts body[off, off + len) under key. timeoutMs: 0 returns FULL at once
     * when the ring is full, a positive value waits up to that long for
     * space, a negative one waits forever. Returns OK or a negative result
     * (the constants of this class, or another negative errno).
     */
    public int put(String key, byte[] body, int off, int len, int timeoutMs) {
        if (key == null || body == null) {
            throw new NullPointerException(key == null ? "key" : "body");
        }
        if (off < 0 || len < 0 || off > body.length - len) {
            throw new IndexOutOfBoundsException("off " + off + ", len " + len + ", array " + body.length);
        }
        long h = acquire();
        try {
            return nPut(h, key, key.length(), body, off, len, timeoutMs);
        } finally {
            release();
        }
    }

    /** Puts the whole array. */
    public int put(String key, byte[] body, int timeoutMs) {
        if (body == null) {
            throw new NullPointerException("body");
        }
        return put(key, body, 0, body.length, timeoutMs);
    }

    /**
     * Puts the bytes between the buffer's position and its limit; the
     * position and limit are not changed. A direct buffer is copied from
     * where it lies; a heap buffer through its backing array.
     */
    public int put(String key, ByteBuffer body, int timeoutMs) {
        if (key == null || body == null) {
            throw new NullPointerException(key == null ? "key" : "body");
        }
        int pos = body.position();
        int len = body.limit() - pos;
        if (!body.isDirect()) {
            if (!body.hasArray()) {
                throw new IllegalArgumentException("a read-only heap buffer has no accessible array");
            }
            return put(key, body.array(), body.arrayOffset() + pos, len, timeoutMs);
        }
        long h = acquire();
        try {
            return nPutDirect(h, key, key.length(), body, pos, len, timeoutMs);
        } finally {
            release();
        }
    }

    /** A put that never waits: FULL at once when the ring is full. */
    public int tryPut(String key, byte[] body, int off, int len) {
        return put(key, body, off, len, 0);
    }

    /** A put of the whole array that never waits. */
    public int tryPut(String key, byte[] body) {
        return put(key, body, 0);
    }

    /** A put of a buffer that never waits. */
    public int tryPut(String key, ByteBuffer body) {
        return put(key, body, 0);
    }

    /** The largest body a put accepts with a key of keyBytes bytes of UTF-8. */
    public long maxBody(int keyBytes) {
        if (keyBytes < 0) {
            throw new IllegalArgumentException("keyBytes " + keyBytes);
        }
        long h = acquire();
        try {
            return nMaxBody(h, keyBytes);
        } finally {
            release();
        }
    }

    /**
     * Releases the producer slot and unmaps the ring, once the puts running
     * in other threads have returned. A second close does nothing.
     */
    @Override
    public void close() {
        for (;;) {
            int u = uses;
            if (u < 0) {
                return;
            }
            if (USES.compareAndSet(this, u, u | CLOSED)) {
                if (u == 0) {
                    nClose(handle);
                }
                return;
            }
        }
    }

    /** A message for a result (or any errno, negative or positive). */
    public static String strerror(int rc) {
        return nStrerror(rc);
    }

    private long acquire() {
        for (;;) {
            int u = uses;
            if (u < 0) {
                throw new IllegalStateException("s3ring: the handle on ring '" + name + "' is closed");
            }
            if (USES.compareAndSet(this, u, u + 1)) {
                return handle;
            }
        }
    }

    private void release() {
        if (USES.decrementAndGet(this) == CLOSED) {
            nClose(handle);
        }
    }

    private static native long nOpen(String name, int flags);

    private static native int nPut(long h, String key, int keyUnits, byte[] body, int off, int len, int timeoutMs);

    private static native int nPutDirect(long h, String key, int keyUnits, ByteBuffer body, int pos, int len, int timeoutMs);

    private static native long nMaxBody(long h, int keyBytes);

    private static native void nClose(long h);

    private static native String nStrerror(int err);
}
