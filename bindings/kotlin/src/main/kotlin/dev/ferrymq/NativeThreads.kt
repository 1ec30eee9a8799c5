package dev.ferrymq

import com.sun.jna.Callback
import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import dev.ferrymq.ffi.uniffiCallbackInterfaceFfiLocalTransaction
import dev.ferrymq.ffi.uniffiCallbackInterfaceFfiTransactionChecker
import dev.ferrymq.ffi.uniffiRustFutureContinuationCallbackImpl

/**
 * Keeps the native library's threads attached to the JVM between callbacks.
 *
 * Every suspend call completes through a JNA callback from one of the library's Tokio
 * threads, and transaction callbacks run on its blocking threads. By default JNA
 * attaches such a thread to the JVM for one callback and detaches it after, which creates a
 * `java.lang.Thread` per call and dominated the cost of a send. Attached once, the threads stay
 * attached (as daemons) until they exit.
 */
internal object NativeThreads {
    private val callbacks: List<Callback> = listOf(
        uniffiRustFutureContinuationCallbackImpl,
        uniffiCallbackInterfaceFfiLocalTransaction.`execute`,
        uniffiCallbackInterfaceFfiTransactionChecker.`check`,
    )

    private val initializer = CallbackThreadInitializer(true, false, "ferrymq-native")

    init {
        install()
    }

    /** Sets the initializer on each callback (again, after a test replaced it). */
    fun install() {
        for (callback in callbacks) Native.setCallbackThreadInitializer(callback, initializer)
    }

    /** Runs the initializer once (touching the object is enough). */
    fun ensure() = Unit
}
