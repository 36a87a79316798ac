/* S3RingException.java -- a ring that cannot be opened. */
package org.s3ring;

/** Thrown by S3Ring.open(); {@link #errno()} is the C library's errno. */
public final class S3RingException extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private static final int ENOENT = 2;
    private final int errno;

    S3RingException(String message, int errno) {
        super(message);
        this.errno = errno;
    }

    static S3RingException forOpen(String ring, int errno, String reason) {
        String m = "s3ring: cannot open ring '" + ring + "' (/dev/shm/s3ring." + ring + "): " + reason;
        if (errno == ENOENT) {
            m = "s3ring: no such ring '" + ring + "' (/dev/shm/s3ring." + ring + "): start s3ring-uploader --ring "
                + ring + ", which creates it, or open it with create = true";
        }
        return new S3RingException(m, errno);
    }

    /** The errno of the failure (ENOENT, EACCES, EPROTO, EBADMSG, EUSERS, ...). */
    public int errno() {
        return errno;
    }
}
