// What one call into the native library costs from the JVM, by transport and by part:
//
//     mvn -f bindings/kotlin/pom.xml -q -Pnative-release test-compile exec:java \
//         -Dexec.classpathScope=test -Dexec.mainClass=dev.ferrymq.bench.CallCostKt
//
// (-Pnative-release: the release library; without it, the debug one.) Each line is the
// nanoseconds per call of one loop, the best and the median of five rounds after a warm-up
// round (the first, interpreted-and-compiling round is printed too, as "cold"). BENCHMARKS.md
// and bindings/kotlin/README.md ("Why JNI for the hot path") record the figures.
package dev.ferrymq.bench

import com.sun.jna.Native
import dev.ferrymq.Client
import dev.ferrymq.FastPath
import dev.ferrymq.OutgoingMessage
import dev.ferrymq.ffi.FfiClient
import dev.ferrymq.ffi.FfiConverterSequenceTypeFfiOutgoing
import dev.ferrymq.ffi.FfiConverterTypeFfiOutgoing
import dev.ferrymq.ffi.FfiOutgoing
import dev.ferrymq.ffi.FfiPushOptions
import dev.ferrymq.ffi.UniffiLib
import dev.ferrymq.ffi.UniffiRustCallStatus
import dev.ferrymq.ffi.ffiEmbedded
import dev.ferrymq.ffi.ffiLibraryMarker
import java.nio.file.Files
import kotlinx.coroutines.runBlocking

/** libc's getpid through JNA direct mapping: a JNA call with no `Structure` and no buffer. */
private object LibC {
    init {
        Native.register(LibC::class.java, "c")
    }

    external fun getpid(): Int
}

private var sink = 0L

/** Runs [call] [n] times per round: one cold round, then five; prints ns per call. */
private inline fun measure(what: String, n: Int, call: () -> Long) {
    val rounds = DoubleArray(6)
    for (round in rounds.indices) {
        val started = System.nanoTime()
        for (i in 0 until n) sink += call()
        rounds[round] = (System.nanoTime() - started).toDouble() / n
    }
    val steady = rounds.drop(1).sorted()
    println("%-58s | cold %9.0f | best %9.0f | median %9.0f ns/call".format(what, rounds[0], steady[0], steady[2]))
}

fun main() {
    val dir = Files.createTempDirectory("ferrymq-kt-callcost").toFile()
    try {
        runBlocking {
            val ffi: FfiClient = ffiEmbedded(dir.path, mapOf("segment_bytes" to "8MiB"))
            val producer = ffi.producer(null)
            val consumer = ffi.pushConsumer("callcost", "callcost", FfiPushOptions(null, null, "clustering", false, "average", "first", null, null, null, null))
            FastPath.ensure()
            val producerId = producer.fastId().toLong()
            val consumerId = consumer.fastId().toLong()
            val n = 20_000

            measure("JNA direct, primitives only (libc getpid)", n) { LibC.getpid().toLong() }
            measure("JNA Structure allocation alone (UniffiRustCallStatus)", n) { UniffiRustCallStatus().code.toLong() }
            measure("uniffi free function, u64 result (ffiLibraryMarker)", n) { ffiLibraryMarker().toLong() }
            measure("uniffi clone + free of a handle (2 JNA calls)", n) {
                val handle = producer.uniffiCloneHandle()
                UniffiLib.uniffi_ferrymq_kotlin_fn_free_ffiproducer(handle, UniffiRustCallStatus())
                handle
            }
            measure("uniffi method, u64 result (producer.fastId)", n) { producer.fastId().toLong() }
            measure("uniffi method, empty list argument (settle)", n) { consumer.settle(emptyList()).toLong() }
            measure("uniffi method, string result (consumer.group)", n) { consumer.group().length.toLong() }
            measure("JNI, trivial (FastPath.marker)", n) { FastPath.marker() }
            measure("JNI, registry lookup + empty settle (FastPath.settle)", n) { FastPath.settle(consumerId, LongArray(0)).toLong() }

            val topic = "callcost"
            val body = ByteArray(1024) { 'x'.code.toByte() }
            val outgoing = FfiOutgoing(body, null, emptyList(), emptyMap(), null, null, null, null, null)
            val sends = 2_000
            measure("uniffi sendBlocking, 1 KiB, embedded", sends) { producer.sendBlocking(topic, outgoing).queueOffset ?: 0 }
            measure("JNI sendBlocking, 1 KiB, embedded", sends) {
                FastPath.sendBlocking(producerId, topic, FastPath.encode(FfiConverterTypeFfiOutgoing, outgoing)).size.toLong()
            }
            val batch = List(100) { outgoing }
            val encodedBatch = FastPath.encode(FfiConverterSequenceTypeFfiOutgoing, batch)
            val batches = sends / 20
            measure("uniffi sendBatchBlocking, 100 x 1 KiB, per batch", batches) { producer.sendBatchBlocking(topic, batch).size.toLong() }
            measure("JNI sendBatchBlocking, 100 x 1 KiB, per batch", batches) {
                FastPath.sendBatchBlocking(producerId, topic, FastPath.encode(FfiConverterSequenceTypeFfiOutgoing, batch)).size.toLong()
            }
            measure("uniffi sendBatch (suspend), 100 x 1 KiB, per batch", batches) { producer.sendBatch(topic, batch).size.toLong() }
            measure("JNI sendBatch (suspend), 100 x 1 KiB, per batch", batches) {
                FastPath.call { token -> FastPath.sendBatch(producerId, topic, encodedBatch, token) }.size.toLong()
            }
            val sdkProducer = Client.embedded(Files.createTempDirectory(dir.toPath(), "sdk").toString(), mapOf("segment_bytes" to "8MiB"))
            sdkProducer.use { client ->
                val p = client.producer()
                measure("SDK Producer.sendBlocking (JNI), 1 KiB, embedded", sends) { p.sendBlocking(topic, body).queueOffset ?: 0 }
                measure("SDK Producer.send (JNI, suspend), 1 KiB, embedded", sends) { p.send(topic, body).queueOffset ?: 0 }
                measure("SDK Producer.sendBatchBlocking, 100 x 1 KiB, per batch", sends / 20) {
                    p.sendBatchBlocking(topic, List(100) { OutgoingMessage(body) }).size.toLong()
                }
                measure("SDK Producer.sendBatch (suspend), 100 x 1 KiB, per batch", sends / 20) {
                    p.sendBatch(topic, List(100) { OutgoingMessage(body) }).size.toLong()
                }
            }
            consumer.shutdown()
            ffi.shutdown()
        }
    } finally {
        dir.deleteRecursively()
    }
    if (sink == 42L) println()
}
