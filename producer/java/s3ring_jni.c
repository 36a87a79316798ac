/* s3ring_jni.c -- the JNI half of org.s3ring.S3Ring: open, put, close.
 *
 * A put from Java allocates nothing on the Java heap and makes no temporary
 * copy of the body: the key goes from the String's UTF-16 into a bounded
 * stack buffer as real UTF-8 (not JNI's modified UTF-8, which encodes NUL
 * and characters outside the BMP differently from what S3 stores), the
 * record is reserved in the ring, and GetByteArrayRegion (or a memcpy from a
 * direct buffer) writes the body straight into it. A key that UTF-8 cannot
 * carry (a lone surrogate, NUL) is an invalid key, returned as -EINVAL like
 * any other bad key; only misuse (null, bounds) raises a Java exception, and
 * the Java class checks those before calling here. Every function returns
 * the C API's negative errno unchanged, so a code this file does not know
 * still reaches Java intact.
 */
#include <errno.h>
#include <jni.h>
#include <stdint.h>
#include <string.h>

#include "org_s3ring_S3Ring.h" /* javac -h: the prototypes of the natives */
#include "s3ring.h"

/* S3Ring.java spells the results as Linux errno values, so that Java code
 * can switch on them; these keep the two in step. */
_Static_assert(EAGAIN == 11 && ETIMEDOUT == 110 && EMSGSIZE == 90 && EINVAL == 22 &&
    EPROTO == 71 && EBADMSG == 74 && ESTALE == 116, "errno values of S3Ring.java");

static struct s3ring_producer *
handle(jlong h)
{
	return (struct s3ring_producer *)(intptr_t)h;
}

/* Converts key, of n UTF-16 units (key.length(), passed from Java: one
 * JNI call fewer), to UTF-8 in out (S3RING_MAX_KEY + 1 bytes,
 * NUL-terminated). Returns the length, or -EINVAL for an empty key, one of
 * more than S3RING_MAX_KEY bytes, a lone surrogate or a NUL character. Each
 * UTF-16 unit becomes at least one byte, so a string longer than
 * S3RING_MAX_KEY units is refused before anything is copied. */
static int
key_utf8(JNIEnv *env, jstring key, jint n, char *out)
{
	jchar u[S3RING_MAX_KEY];
	size_t o = 0;

	if (n <= 0 || n > S3RING_MAX_KEY)
		return -EINVAL;
	(*env)->GetStringRegion(env, key, 0, n, u);
	for (jsize i = 0; i < n; i++) {
		uint32_t c = u[i];
		size_t need;

		if (c >= 0xd800 && c <= 0xdbff) {
			if (i + 1 >= n || u[i + 1] < 0xdc00 || u[i + 1] > 0xdfff)
				return -EINVAL;
			c = 0x10000 + ((c - 0xd800) << 10) + (u[i + 1] - 0xdc00u);
			i++;
		} else if ((c >= 0xdc00 && c <= 0xdfff) || c == 0) {
			return -EINVAL;
		}
		need = c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
		if (o + need > S3RING_MAX_KEY)
			return -EINVAL;
		switch (need) {
		case 1:
			out[o++] = (char)c;
			break;
		case 2:
			out[o++] = (char)(0xc0 | c >> 6);
			out[o++] = (char)(0x80 | (c & 0x3f));
			break;
		case 3:
			out[o++] = (char)(0xe0 | c >> 12);
			out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
			break;
		default:
			out[o++] = (char)(0xf0 | c >> 18);
			out[o++] = (char)(0x80 | (c >> 12 & 0x3f));
			out[o++] = (char)(0x80 | (c >> 6 & 0x3f));
			out[o++] = (char)(0x80 | (c & 0x3f));
			break;
		}
	}
	out[o] = '\0';
	return (int)o;
}

/* Returns the handle as a positive jlong, or -errno. User-space pointers
 * are below 2^47 on Linux, so the two never overlap. */
JNIEXPORT jlong JNICALL
Java_org_s3ring_S3Ring_nOpen(JNIEnv *env, jclass cls, jstring name, jint flags)
{
	const char *n = NULL;
	struct s3ring_producer *p;
	int err;

	if (name != NULL && (n = (*env)->GetStringUTFChars(env, name, NULL)) == NULL)
		return -ENOMEM; /* OutOfMemoryError is pending */
	p = s3ring_open(n, (unsigned)flags);
	err = errno;
	if (n != NULL)
		(*env)->ReleaseStringUTFChars(env, name, n);
	if (p == NULL)
		return -(jlong)(err > 0 ? err : EIO);
	return (jlong)(intptr_t)p;
}

JNIEXPORT jint JNICALL
Java_org_s3ring_S3Ring_nPut(JNIEnv *env, jclass cls, jlong h, jstring key, jint key_units,
    jbyteArray body, jint off, jint len, jint timeout_ms)
{
	char k[S3RING_MAX_KEY + 1];
	struct s3ring_reservation r;
	int rc;

	if ((rc = key_utf8(env, key, key_units, k)) < 0)
		return rc;
	if ((rc = s3ring_reserve(handle(h), k, (size_t)len, &r, timeout_ms)) < 0)
		return rc;
	/* S3Ring.java checked off and len against the array's length, which
	 * cannot change, so this cannot throw; no ExceptionCheck() after it,
	 * which costs a transition into the VM like any JNI call (4 % of the
	 * samples of a 64 B put). */
	(*env)->GetByteArrayRegion(env, body, off, len, r.data);
	return s3ring_commit(handle(h), &r);
}

JNIEXPORT jint JNICALL
Java_org_s3ring_S3Ring_nPutDirect(JNIEnv *env, jclass cls, jlong h, jstring key,
    jint key_units, jobject buf, jint pos, jint len, jint timeout_ms)
{
	char k[S3RING_MAX_KEY + 1];
	const char *src = (*env)->GetDirectBufferAddress(env, buf);
	int rc;

	if (src == NULL)
		return -EINVAL;
	if ((rc = key_utf8(env, key, key_units, k)) < 0)
		return rc;
	return s3ring_put(handle(h), k, src + pos, (size_t)len, timeout_ms);
}

JNIEXPORT jlong JNICALL
Java_org_s3ring_S3Ring_nMaxBody(JNIEnv *env, jclass cls, jlong h, jint key_len)
{
	return (jlong)s3ring_max_body(handle(h), (size_t)key_len);
}

JNIEXPORT void JNICALL
Java_org_s3ring_S3Ring_nClose(JNIEnv *env, jclass cls, jlong h)
{
	s3ring_close(handle(h));
}

JNIEXPORT jstring JNICALL
Java_org_s3ring_S3Ring_nStrerror(JNIEnv *env, jclass cls, jint err)
{
	return (*env)->NewStringUTF(env, s3ring_strerror(err));
}
