package dev.ferrymq

import dev.ferrymq.ffi.FfiException
import dev.ferrymq.ffi.InternalException

/**
 * Every error of the SDK. Each subclass stands for one or more of the contract's error kinds;
 * [kind] is the exact one (`invalid-argument`, `not-found`, ...), [type] the same URN as the
 * REST problem type, and [retriable] says whether the same call may succeed if tried again.
 *
 * A panic in the native library arrives as [Internal]: it never crashes the JVM.
 */
sealed class FerryException(
    /** The contract's error kind, as in `urn:ferrymq:error:<kind>`. */
    val kind: String,
    /** What went wrong. */
    val detail: String,
    /** For [InvalidArgument]: the offending argument as a JSON-Pointer-like path (`/delay_level`). */
    val field: String? = null,
    cause: Throwable? = null,
) : RuntimeException(detail, cause) {
    /** The problem type: `urn:ferrymq:error:<kind>`. */
    val type: String get() = "urn:ferrymq:error:$kind"

    /** Whether trying the same call again may succeed (the broker was busy or unreachable). */
    open val retriable: Boolean get() = false

    /** A bad argument: a malformed name, an out-of-range number, a filter that does not parse
     * (kind `invalid-filter`), a body over the size limit (`payload-too-large`). */
    class InvalidArgument(kind: String, detail: String, field: String?, cause: Throwable? = null) :
        FerryException(kind, detail, field, cause)

    /** Something named does not exist: a topic, group, message, transaction or receipt. */
    class NotFound(kind: String, detail: String, cause: Throwable? = null) : FerryException(kind, detail, null, cause)

    /** The call conflicts with the current state: the topic exists, the receipt was acked or
     * expired, the transaction ended, an idempotency key was reused (`idempotency-conflict`). */
    class Conflict(kind: String, detail: String, cause: Throwable? = null) : FerryException(kind, detail, null, cause)

    /** The call did not complete in time. */
    class Timeout(kind: String, detail: String, cause: Throwable? = null) : FerryException(kind, detail, null, cause) {
        override val retriable: Boolean get() = true
    }

    /** The server could not be reached or the connection broke. */
    class ConnectionError(kind: String, detail: String, cause: Throwable? = null) :
        FerryException(kind, detail, null, cause) {
        override val retriable: Boolean get() = true
    }

    /** Missing or invalid credentials (the server has an `auth_file`). */
    class Unauthorized(kind: String, detail: String, cause: Throwable? = null) :
        FerryException(kind, detail, null, cause)

    /** The token, or the topic's permission, does not allow this. */
    class Forbidden(kind: String, detail: String, cause: Throwable? = null) : FerryException(kind, detail, null, cause)

    /** The broker is starting (recovery) or shutting down. */
    class Unavailable(kind: String, detail: String, cause: Throwable? = null) :
        FerryException(kind, detail, null, cause) {
        override val retriable: Boolean get() = true
    }

    /** The broker's disk is nearly full; writes are refused. */
    class InsufficientStorage(kind: String, detail: String, cause: Throwable? = null) :
        FerryException(kind, detail, null, cause)

    /** A fault inside the broker or the native library (a panic included). */
    class Internal(kind: String, detail: String, cause: Throwable? = null) : FerryException(kind, detail, null, cause)

    companion object {
        /** The exception for an error of [kind]: the one table from kinds to classes. */
        @JvmStatic
        fun of(kind: String, detail: String, field: String? = null, cause: Throwable? = null): FerryException =
            when (kind) {
                "invalid-argument", "invalid-filter", "payload-too-large" -> InvalidArgument(kind, detail, field, cause)
                "not-found" -> NotFound(kind, detail, cause)
                "conflict", "idempotency-conflict" -> Conflict(kind, detail, cause)
                "timeout" -> Timeout(kind, detail, cause)
                "connection" -> ConnectionError(kind, detail, cause)
                "unauthorized" -> Unauthorized(kind, detail, cause)
                "forbidden" -> Forbidden(kind, detail, cause)
                "unavailable" -> Unavailable(kind, detail, cause)
                "insufficient-storage" -> InsufficientStorage(kind, detail, cause)
                else -> Internal(kind, detail, cause)
            }
    }
}

/** Runs a call into the native layer, turning its errors into [FerryException]s. */
internal inline fun <T> native(block: () -> T): T =
    try {
        block()
    } catch (e: FfiException.Failure) {
        throw FerryException.of(e.kind, e.detail, e.field, e)
    } catch (e: InternalException) {
        throw FerryException.Internal("internal", "the FerryMQ native library failed: ${e.message}", e)
    }
