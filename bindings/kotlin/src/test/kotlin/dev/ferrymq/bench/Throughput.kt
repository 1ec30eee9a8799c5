// Throughput of the Kotlin SDK: 1 KiB messages, embedded and against a server.
//
//     [FERRYMQ_BENCH_URL=http://127.0.0.1:8080] mvn -f bindings/kotlin/pom.xml -q -Pnative-release \
//         test-compile exec:java -Dexec.classpathScope=test -Dexec.mainClass=dev.ferrymq.bench.ThroughputKt
//
// (-Pnative-release: the native library built with cargo's release profile; without it, debug.)
//
// (The URL comes from the environment: -Dexec.args would also replace the pom's cargo
// arguments.) Without FERRYMQ_BENCH_URL, embedded only.
//
// A first round at a fifth of the sizes warms the JIT up and is not reported. The embedded
// broker has the store settings of the Rust client's bench (STORE), and the counts are those
// of `core/tests/client_throughput.rs` run with FERRYMQ_CLIENT_BENCH_SINGLES=20000
// FERRYMQ_CLIENT_BENCH_MESSAGES=200000: 20 000 single sends, 200 000 in batches of 100, a
// backlog of 200 000 for push consumption, so that each row lasts about a second on a release
// build (a drain of 20 000 lasted 40 to 100 ms, too short to compare). For a ratio beside the
// Rust client that is not mostly noise, run both at 1 500 000 (FERRYMQ_KT_BENCH_SCALE=7.5
// FERRYMQ_KT_BENCH_ONLY=sendBatch,listener,flow; FERRYMQ_CLIENT_BENCH_MESSAGES=1500000): the
// Rust listener drains 200 000 in 0.25 to 0.7 s. The drains are timed as the Rust bench times
// them: from before the consumer is made (made, started, and for the flow collected) until the
// last message is counted.
// Prints one line per path, with the process's CPU time per message (every JVM thread: the
// caller, the library's runtime, the JIT and the GC); BENCHMARKS.md ("Kotlin/JVM SDK")
// records the figures. Each path uses a fresh topic of 8 queues and a fresh group; sizes
// scale with FERRYMQ_KT_BENCH_SCALE; FERRYMQ_KT_BENCH_ONLY=listener,flow runs only those rows
// (send, sendBlocking, sendBatch, inflight, listener, flow, simple).
package dev.ferrymq.bench

import dev.ferrymq.Client
import dev.ferrymq.OutgoingMessage
import dev.ferrymq.PushConsumer
import java.lang.management.ManagementFactory
import java.nio.file.Files
import java.util.UUID
import java.util.concurrent.CountDownLatch
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.coroutineScope
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.runBlocking

private val BODY = ByteArray(1024) { 'x'.code.toByte() }

/** The store settings of the Rust client's bench (`core/tests/client_throughput.rs`) that an
 * embedded config can set: 64 MiB segments (not 1 GiB, allocated up front) and a flush every
 * 20 ms, so that both benches measure the client over the same store. */
private val STORE = mapOf("segment_bytes" to "64MiB", "flush_interval" to "20ms")
private val SCALE = System.getenv("FERRYMQ_KT_BENCH_SCALE")?.toDouble() ?: 1.0

private var scale = SCALE

/** The rows to run (`FERRYMQ_KT_BENCH_ONLY=listener,flow`, for profiling one path); all when unset. */
private val ONLY = System.getenv("FERRYMQ_KT_BENCH_ONLY")?.split(',')?.map { it.trim() }?.toSet()

private inline fun row(name: String, block: () -> Unit) {
    if (ONLY == null || name in ONLY) block()
}

private fun n(count: Int) = maxOf(100, (count * scale).toInt())

/** False while warming up: the JIT compiles the hot paths in a first, unreported round. */
private var reporting = true

/** This process's CPU time so far, every thread, in ns. */
private fun cpuNanos(): Long =
    (ManagementFactory.getOperatingSystemMXBean() as com.sun.management.OperatingSystemMXBean).processCpuTime

/** CPU time the last row timed took, in ns. */
private var cpuUsed = 0L

private fun report(where: String, path: String, count: Int, nanos: Long) {
    if (!reporting) return
    val rate = count / (nanos / 1e9)
    val cpuPerMessage = cpuUsed / 1e3 / count
    println(
        "%-8s | %-52s | %6d | %9.0f msg/s | %6.1f MiB/s | %5.1f µs CPU/msg"
            .format(where, path, count, rate, rate * BODY.size / (1 shl 20), cpuPerMessage),
    )
}

private suspend fun fresh(client: Client): String =
    "bench-${UUID.randomUUID().toString().take(8)}".also { client.admin().createTopic(it, queues = 8) }

private suspend inline fun timed(block: () -> Unit): Long {
    val cpuStarted = cpuNanos()
    val started = System.nanoTime()
    block()
    val nanos = System.nanoTime() - started
    cpuUsed = cpuNanos() - cpuStarted
    return nanos
}

private suspend fun backlog(client: Client, count: Int): String {
    val topic = fresh(client)
    val producer = client.producer()
    for (i in 0 until count step 100) producer.sendBatch(topic, List(minOf(100, count - i)) { OutgoingMessage(BODY) })
    return topic
}

private suspend fun run(where: String, client: Client, remote: Boolean) {
    val producer = client.producer()
    row("send") {
        val count = n(if (remote) 2_000 else 20_000)
        val topic = fresh(client)
        report(where, "Producer.send, one at a time", count, timed { repeat(count) { producer.send(topic, BODY) } })
    }
    row("sendBlocking") {
        val count = n(if (remote) 2_000 else 20_000)
        val topic = fresh(client)
        report(where, "Producer.sendBlocking, one at a time", count, timed { repeat(count) { producer.sendBlocking(topic, BODY) } })
    }
    row("sendBatch") {
        val count = n(if (remote) 20_000 else 200_000)
        val topic = fresh(client)
        val batch = List(100) { OutgoingMessage(BODY) }
        report(where, "Producer.sendBatch, 100 per batch", count, timed { repeat(count / 100) { producer.sendBatch(topic, batch) } })
    }
    row("inflight") {
        val count = n(if (remote) 6_400 else 38_400)
        val topic = fresh(client)
        val nanos = timed {
            coroutineScope {
                repeat(count / 64) { (0 until 64).map { async { producer.send(topic, BODY) } }.awaitAll() }
            }
        }
        report(where, "Producer.send, 64 coroutines in flight", count / 64 * 64, nanos)
    }
    row("listener") {
        val count = n(if (remote) 20_000 else 200_000)
        val topic = backlog(client, count)
        val done = CountDownLatch(count)
        lateinit var consumer: PushConsumer
        val nanos = timed {
            consumer = client.pushConsumer("g-${UUID.randomUUID()}", topic, listener = { done.countDown() })
            consumer.start()
            done.await()
        }
        consumer.shutdown()
        report(where, "PushConsumer with a listener (16 workers)", count, nanos)
    }
    row("flow") {
        val count = n(if (remote) 20_000 else 200_000)
        val topic = backlog(client, count)
        val nanos = timed {
            client.pushConsumer("g-${UUID.randomUUID()}", topic).messages().onEach { it.ack() }.take(count).collect()
        }
        report(where, "PushConsumer.messages() flow, ack() each", count, nanos)
    }
    row("simple") {
        val count = n(if (remote) 5_000 else 20_000)
        val topic = backlog(client, count)
        val consumer = client.simpleConsumer("g-${UUID.randomUUID()}", topic)
        var got = 0
        val nanos = timed {
            while (got < count) {
                for (m in consumer.receive(maxMessages = 64, waitMs = 1_000)) {
                    consumer.ack(m)
                    got++
                }
            }
        }
        report(where, "SimpleConsumer.receive(64) + ack each", got, nanos)
    }
}

fun main(args: Array<String>) {
    runBlocking {
        val dir = Files.createTempDirectory("ferrymq-kt-bench").toFile()
        try {
            Client.embedded(dir.path, STORE).use {
                // A JVM runs interpreted code until its JIT has compiled the hot paths: warm up
                // with a fifth of the work, unreported, so that the figures are steady state.
                reporting = false
                scale = SCALE / 5
                run("warm-up", it, remote = false)
                reporting = true
                scale = SCALE
                run("embedded", it, remote = false)
            }
        } finally {
            dir.deleteRecursively()
        }
        (args.firstOrNull() ?: System.getenv("FERRYMQ_BENCH_URL"))?.let { url -> Client.connect(url).use { run("remote", it, remote = true) } }
    }
}
