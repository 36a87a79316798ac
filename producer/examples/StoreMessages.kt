/* StoreMessages.kt -- a Kotlin service's S3 uploads, handed to s3ring.
 *
 * The service this replaces kept a Channel(4096) of (key, message) pairs,
 * drained by 16 coroutines that each called the AWS SDK's async putObject,
 * plus a launch on Dispatchers.IO per upload; under a slow S3 its memory
 * climbed until the container died. Here storeMessage(key, message) is one
 * put into the shared-memory ring: no channel, no coroutine, no SDK, no
 * allocation. s3ring-uploader, a separate process, does the uploading.
 *
 * Build against the installed jar, and run with the JNI library's directory
 * (PREFIX is where `make install` put them):
 *     kotlinc -cp $PREFIX/share/java/s3ring.jar -include-runtime -d store.jar StoreMessages.kt
 *     java -Djava.library.path=$PREFIX/lib -cp store.jar:$PREFIX/share/java/s3ring.jar \
 *         StoreMessagesKt [--ring NAME] [--count N] [--prefix P] [--wait-ms MS]
 *
 * It stores N messages under PREFIXp0/1 .. PREFIXp0/N, waiting up to MS
 * (default 1000) milliseconds for space when the ring is full, and exits 0
 * when none was dropped.
 * The message bodies come from a small deterministic generator (the same
 * one as the test suite's C producers), so a test can check every object
 * in the bucket byte for byte.
 */
import org.s3ring.S3Ring
import kotlin.system.exitProcess

class MessageStore(private val ring: S3Ring, private val waitMs: Int = 1000) : java.io.Closeable {
    var dropped = 0L
        private set

    /** What used to be `channel.send(key to message)`. */
    fun storeMessage(key: String, message: ByteArray, length: Int = message.size): Boolean {
        val rc = ring.put(key, message, 0, length, waitMs)
        when (rc) {
            S3Ring.OK -> return true
            S3Ring.FULL, S3Ring.TIMED_OUT -> dropped++ // the uploader is behind: counted, not queued
            else -> System.err.println("storeMessage $key: ${S3Ring.strerror(rc)}")
        }
        return false
    }

    override fun close() = ring.close()
}

/** Fills buf with message seq of producer proc; returns its length (1..maxLen). */
fun messageBody(buf: ByteArray, proc: Int, seq: Long, minLen: Int, maxLen: Int): Int {
    var s = (proc * -1640531535 /* 2654435761 */) xor (seq * 40503L).toInt() xor -1640531527 /* 0x9e3779b9 */
    if (s == 0) s = 1
    fun next(): Int {
        s = s xor (s shl 13)
        s = s xor (s ushr 17)
        s = s xor (s shl 5)
        return s
    }
    val span = (maxLen - minLen + 1).toLong()
    val len = minLen + if (maxLen > minLen) java.lang.Integer.toUnsignedLong(next()).rem(span).toInt() else 0
    for (i in 0 until len) buf[i] = next().toByte()
    return len
}

fun main(args: Array<String>) {
    var ring: String? = null
    var count = 10_000L
    var prefix = "kotlin/"
    var waitMs = 1000
    var i = 0
    while (i < args.size) {
        when (args[i]) {
            "--ring" -> ring = args[++i]
            "--count" -> count = args[++i].toLong()
            "--prefix" -> prefix = args[++i]
            "--wait-ms" -> waitMs = args[++i].toInt()
            else -> {
                System.err.println("usage: StoreMessagesKt [--ring NAME] [--count N] [--prefix P] [--wait-ms MS]")
                exitProcess(64)
            }
        }
        i++
    }
    val buf = ByteArray(4096)
    var stored = 0L
    MessageStore(S3Ring.open(ring), waitMs).use { store ->
        for (seq in 1..count) {
            val len = messageBody(buf, 0, seq, 1, 4096)
            if (store.storeMessage("${prefix}p0/$seq", buf, len)) stored++
        }
        println("stored $stored dropped ${store.dropped}")
        exitProcess(if (stored == count) 0 else 1)
    }
}
