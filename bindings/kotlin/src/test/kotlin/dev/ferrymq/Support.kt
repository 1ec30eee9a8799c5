package dev.ferrymq

import java.io.File
import java.net.HttpURLConnection
import java.net.ServerSocket
import java.net.URI
import java.nio.file.Files
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.delay
import kotlinx.coroutines.withTimeout

/** Where the tests' brokers come from: one in this process, or a `ferrymq serve` they start. */
enum class Backend { EMBEDDED, SERVER }

private val counter = AtomicInteger()

/** A name unique in this test run (topics and groups never collide between tests). */
fun unique(prefix: String) = "$prefix-${ProcessHandle.current().pid()}-${counter.incrementAndGet()}"

/** A fresh directory, deleted with everything in it when the JVM exits (brokers allocate their
 * segments up front: nothing may stay behind). */
fun tempDir(): File = Files.createTempDirectory("ferrymq-kotlin-test").toFile().also { dir ->
    Runtime.getRuntime().addShutdownHook(Thread { dir.deleteRecursively() })
}

/** Runs [block] with a fresh directory and deletes it after. */
inline fun <T> withTempDir(block: (File) -> T): T {
    val dir = Files.createTempDirectory("ferrymq-kotlin-test").toFile()
    try {
        return block(dir)
    } finally {
        dir.deleteRecursively()
    }
}

/** Every test broker: segments of 8 MiB rather than the default 1 GiB, which the store
 * allocates on disk when it opens. */
val SMALL: Map<String, String> = mapOf("segment_bytes" to "8MiB")

/** Settings that make the broker's timers fast enough for tests. */
val FAST: Map<String, String> = mapOf(
    "delay_levels" to "100ms 200ms 300ms 400ms 500ms",
    "transaction_timeout" to "500ms",
    "transaction_check_interval" to "300ms",
    "lease_ttl" to "3s",
    "orderly_suspend" to "100ms",
)

/** A `ferrymq serve` on a free port of 127.0.0.1 with a fresh data directory, stopped by [close]. */
class Server(settings: Map<String, String> = emptyMap()) : AutoCloseable {
    val url: String
    private val process: Process
    private val dataDir: File = Files.createTempDirectory("ferrymq-kotlin-test").toFile()

    init {
        val bin = System.getenv("FERRYMQ_BIN") ?: System.getenv("FERRYMQ_BIN_DEFAULT")
            ?: error("set FERRYMQ_BIN to the ferrymq server binary")
        val port = ServerSocket(0).use { it.localPort }
        url = "http://127.0.0.1:$port"
        val command = mutableListOf(bin, "serve", "--data-dir", dataDir.path, "--listen", "127.0.0.1:$port")
        (SMALL + settings).forEach { (k, v) -> command += listOf("--set", "$k=$v") }
        // The server's output, kept for a failing run's reader until the JVM exits.
        val log = File.createTempFile("ferrymq-serve", ".log").also { it.deleteOnExit() }
        process = try {
            ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log).start()
        } catch (e: java.io.IOException) {
            dataDir.deleteRecursively()
            throw e
        }
        val deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30)
        while (!healthy()) {
            if (!process.isAlive || System.nanoTime() >= deadline) close()
            check(process.isAlive) { "ferrymq serve exited with ${process.exitValue()}" }
            check(System.nanoTime() < deadline) { "ferrymq serve did not become healthy" }
            Thread.sleep(50)
        }
    }

    private fun healthy(): Boolean = try {
        val connection = URI("$url/healthz").toURL().openConnection() as HttpURLConnection
        connection.connectTimeout = 500
        connection.readTimeout = 500
        connection.responseCode == 200
    } catch (e: java.io.IOException) {
        false
    }

    override fun close() {
        process.destroy()
        if (!process.waitFor(10, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            process.waitFor(10, TimeUnit.SECONDS)
        }
        dataDir.deleteRecursively()
    }
}

/** Runs [block] with a client of [backend] (and its server, if any), closing both after. */
suspend fun <T> withClient(
    backend: Backend,
    settings: Map<String, String> = emptyMap(),
    block: suspend (Client) -> T,
): T = when (backend) {
    Backend.EMBEDDED -> withTempDir { dir -> Client.embedded(dir.path, SMALL + settings).use { block(it) } }
    Backend.SERVER -> Server(settings).use { server -> Client.connect(server.url).use { block(it) } }
}

/** Waits (up to a generous bound, never asserting on time) until [condition] holds. */
suspend fun eventually(what: String, timeoutMs: Long = 30_000, condition: suspend () -> Boolean) {
    try {
        withTimeout(timeoutMs) {
            while (!condition()) delay(20)
        }
    } catch (e: kotlinx.coroutines.TimeoutCancellationException) {
        throw AssertionError("never happened: $what", e)
    }
}

/** Receives from [consumer] until [count] messages came, acking each. */
suspend fun receiveAll(consumer: SimpleConsumer, count: Int): List<Message> {
    val got = mutableListOf<Message>()
    eventually("$count messages received") {
        for (m in consumer.receive(maxMessages = 32, waitMs = 200)) {
            consumer.ack(m)
            got += m
        }
        got.size >= count
    }
    return got
}

fun String.bytes() = encodeToByteArray()

/** Runs a test body in a coroutine. Returns Unit whatever the body's last expression is:
 * JUnit silently skips test methods that return a value. */
fun coTest(block: suspend kotlinx.coroutines.CoroutineScope.() -> Unit) {
    kotlinx.coroutines.runBlocking(block = block)
}
