package dev.ferrymq

import dev.ferrymq.ffi.FfiSendResult
import dev.ferrymq.ffi.ffiPollCompletions
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicLong
import kotlin.coroutines.resume
import kotlin.coroutines.resumeWithException
import kotlinx.coroutines.CancellableContinuation
import kotlinx.coroutines.suspendCancellableCoroutine

/**
 * Where sends complete. A suspend send starts the call in the native library with a token and
 * suspends; one daemon thread (`ferrymq-completions`) waits in the library for finished calls,
 * takes all that are ready at once and resumes their coroutines. One call in to start and a
 * share of one call in to finish, instead of an asynchronous uniffi call's callback out of a
 * native thread plus three calls in; sends in flight together finish together.
 *
 * A cancelled send stops waiting at once; the publish itself may still complete.
 */
internal object Completions {
    private val waiting = ConcurrentHashMap<Long, CancellableContinuation<List<FfiSendResult>>>()
    private val tokens = AtomicLong()

    init {
        NativeThreads.ensure()
        Thread(::collect, "ferrymq-completions").apply { isDaemon = true }.start()
    }

    /** Starts a call with [start] (given the token) and waits for its results. */
    suspend fun await(start: (Long) -> Unit): List<FfiSendResult> = suspendCancellableCoroutine { continuation ->
        val token = tokens.incrementAndGet()
        waiting[token] = continuation
        continuation.invokeOnCancellation { waiting.remove(token) }
        try {
            native { start(token) }
        } catch (e: Throwable) {
            waiting.remove(token)
            continuation.resumeWithException(e)
        }
    }

    private fun collect() {
        while (true) {
            val done = try {
                ffiPollCompletions(MAX_BATCH)
            } catch (e: Throwable) {
                continue
            }
            for (completion in done) {
                val continuation = waiting.remove(completion.token) ?: continue
                val failure = completion.failure
                if (failure == null) {
                    continuation.resume(completion.results)
                } else {
                    continuation.resumeWithException(FerryException.of(failure.kind, failure.detail, failure.field))
                }
            }
        }
    }

    private const val MAX_BATCH = 256
}
