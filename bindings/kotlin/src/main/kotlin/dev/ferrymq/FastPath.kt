package dev.ferrymq

import com.sun.jna.Library
import com.sun.jna.NativeLibrary
import dev.ferrymq.ffi.FfiClient
import dev.ferrymq.ffi.FfiConverter
import dev.ferrymq.ffi.ffiLibraryMarker
import java.nio.ByteBuffer
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.suspendCancellableCoroutine

/**
 * The JNI fast path of the calls every message makes: sends, taking a push consumer's messages,
 * settling, acking and nacking them (the Rust side is `src/fast_path.rs`).
 *
 * Through uniffi's JNA bindings a call costs tens of microseconds whatever it does; a JNI call
 * costs well under one (the figures are in the README). So these few calls are JNI native
 * methods of this object, in the very library file JNA loaded for uniffi (a second copy would
 * have its own objects and runtime: [init] checks that both paths reach the same one).
 * Everything else stays on uniffi.
 *
 * Objects are named by their `fastId()`; records cross as byte arrays in uniffi's own
 * serialization ([encode], [decode] with the generated converters); failures are thrown as
 * uniffi's `FfiException`, which [native] maps as for any call. An asynchronous call takes a
 * token and returns at once; the library completes it from its runtime's thread with
 * [complete], and [cancel] aborts it when its coroutine is cancelled.
 */
internal object FastPath {
    init {
        // The name and options uniffi's `Native.register` used: JNA hands back the same
        // library, whose file is the one to load.
        val name = System.getProperty("uniffi.component.ferrymq_kotlin.libraryOverride") ?: "ferrymq_kotlin"
        val library = NativeLibrary.getInstance(name, mapOf(Library.OPTION_CLASSLOADER to FfiClient::class.java.classLoader))
        System.load(library.file.absolutePath)
        val marker = init()
        check(marker != 0L && marker == ffiLibraryMarker().toLong()) {
            "the JNI fast path loaded another copy of the FerryMQ library than uniffi (${library.file})"
        }
    }

    /** Makes sure the library is loaded and checked (touching the object is enough). */
    fun ensure() = Unit

    private val waiting = ConcurrentHashMap<Long, CancellableContinuation<ByteArray>>()
    private val tokens = AtomicLong()

    /** Runs an asynchronous call: [start] starts it under a token; the result comes through
     * [complete]. An exception [start] throws (invalid arguments) is thrown at once. */
    suspend fun call(start: (token: Long) -> Unit): ByteArray = suspendCancellableCoroutine { continuation ->
        val token = tokens.incrementAndGet()
        waiting[token] = continuation
        continuation.invokeOnCancellation { if (waiting.remove(token) != null) cancel(token) }
        try {
            start(token)
        } catch (e: Throwable) {
            waiting.remove(token)
            throw e
        }
    }

    /** Called by the library, from its runtime's thread, when the call of [token] ends with
     * [result] or [error]. False when no one waits for it any more (cancelled). */
    @JvmStatic
    fun complete(token: Long, result: ByteArray?, error: Throwable?): Boolean {
        val continuation = waiting.remove(token) ?: return false
        if (error != null) continuation.resumeWithException(error) else continuation.resume(result!!)
        return true
    }

    /** [value] in uniffi's serialization, as [converter] writes it. */
    fun <T> encode(converter: FfiConverter<T, *>, value: T): ByteArray {
        val buffer = ByteBuffer.allocate(converter.allocationSize(value).toInt())
        converter.write(value, buffer)
        return buffer.array().copyOf(buffer.position())
    }

    /** A value read by [converter] from all of [bytes]. */
    fun <T> decode(converter: FfiConverter<T, *>, bytes: ByteArray): T {
        val buffer = ByteBuffer.wrap(bytes)
        return converter.read(buffer).also {
            check(!buffer.hasRemaining()) { "${buffer.remaining()} bytes left over in a native result" }
        }
    }

    /** Caches what the library needs from the JVM; returns its marker. */
    @JvmStatic private external fun init(): Long

    /** The library's marker again: the cheapest call, for the call-cost bench. */
    @JvmStatic external fun marker(): Long

    @JvmStatic external fun sendBlocking(producer: Long, topic: String, message: ByteArray): ByteArray

    @JvmStatic external fun sendBatchBlocking(producer: Long, topic: String, messages: ByteArray): ByteArray

    @JvmStatic external fun send(producer: Long, topic: String, message: ByteArray, token: Long)

    @JvmStatic external fun sendBatch(producer: Long, topic: String, messages: ByteArray, token: Long)

    @JvmStatic external fun recvBatchBlocking(consumer: Long, answers: LongArray, maxMessages: Int): ByteArray

    @JvmStatic external fun recvBatch(consumer: Long, maxMessages: Int, timeoutMs: Long?, token: Long)

    @JvmStatic external fun settle(consumer: Long, answers: LongArray): Int

    @JvmStatic external fun ack(consumer: Long, deliveryId: Long)

    @JvmStatic external fun nack(consumer: Long, deliveryId: Long, delayMs: Long?)

    @JvmStatic external fun cancel(token: Long)

    /** Panics in the library: in this call when [token] is 0, else in the asynchronous call of
     * [token]. For the tests. */
    @JvmStatic external fun panicForTests(message: String, token: Long)
}
