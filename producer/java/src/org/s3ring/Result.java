/* Result.java -- the results of a put, as an enum for code that prefers one. */
package org.s3ring;

/**
 * The C API's results one to one; ERROR stands for any other negative errno
 * (keep the int to know which). {@link #of(int)} allocates nothing.
 */
public enum Result {
    OK, FULL, TIMED_OUT, TOO_LARGE, INVALID_KEY, INCOMPATIBLE, CORRUPT, RETIRED, ERROR;

    /** The Result of an int returned by S3Ring's put methods. */
    public static Result of(int rc) {
        switch (rc) {
        case S3Ring.OK: return OK;
        case S3Ring.FULL: return FULL;
        case S3Ring.TIMED_OUT: return TIMED_OUT;
        case S3Ring.TOO_LARGE: return TOO_LARGE;
        case S3Ring.INVALID_KEY: return INVALID_KEY;
        case S3Ring.INCOMPATIBLE: return INCOMPATIBLE;
        case S3Ring.CORRUPT: return CORRUPT;
        case S3Ring.RETIRED: return RETIRED;
        default: return ERROR;
        }
    }
}
