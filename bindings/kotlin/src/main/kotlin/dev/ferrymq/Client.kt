package dev.ferrymq

import dev.ferrymq.ffi.FfiClient
import dev.ferrymq.ffi.FfiMessage
import dev.ferrymq.ffi.FfiPushOptions
import dev.ferrymq.ffi.FfiTransactionChecker
import dev.ferrymq.ffi.ffiConnect
import dev.ferrymq.ffi.ffiEmbedded
import java.io.Closeable
import java.lang.ref.WeakReference
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.atomic.AtomicBoolean
import kotlinx.coroutines.runBlocking

/**
 * A connection to one FerryMQ broker: embedded in this process ([embedded]) or a
 * `ferrymq serve` gateway ([connect]). The factory of producers, consumers and the admin.
 *
 * ```kotlin
 * Client.embedded("./data").use { client ->
 *     client.producer().send("orders", "hello".encodeToByteArray(), tag = "new")
 * }
 * ```
 *
 * [close] closes the push consumers it made (committing their offsets), then the connection;
 * an embedded broker shuts down cleanly.
 */
class Client private constructor(private val ffi: FfiClient) : Closeable {
    /** Push consumers with a listener, whose threads [shutdown] stops first. */
    private val listening = ConcurrentLinkedQueue<WeakReference<PushConsumer>>()

    /** Set by [close], which also frees the native client. */
    private val closed = AtomicBoolean(false)

    /** Runs [block] on the native client, or throws [FerryException.ConnectionError] once
     * [close] has freed it (what everything made before then throws too). */
    private inline fun <T> live(block: (FfiClient) -> T): T {
        if (closed.get()) throw FerryException.ConnectionError("connection", "the client is closed")
        return block(ffi)
    }

    companion object {
        /** The client's default `consume_workers`. */
        private const val DEFAULT_WORKERS = 16

        /**
         * Opens a broker in this process on the directory [path] (created if missing, recovered
         * if it holds data). [config] takes broker settings by the names and value forms of
         * `ferrymq serve --set key=value` (`"delay_levels" to "100ms 200ms"`, `"flush" to "sync"`);
         * an unknown or server-only key is a [FerryException.InvalidArgument] naming it.
         */
        @JvmStatic
        suspend fun embedded(path: String, config: Map<String, String> = emptyMap()): Client =
            native { NativeThreads.ensure(); Client(ffiEmbedded(path, config)) }

        /** Connects to a gateway at [url] (`http://host:port`), with a bearer [token] when the
         * server has an `auth_file`. [FerryException.ConnectionError] when it cannot be reached. */
        @JvmStatic
        suspend fun connect(url: String, token: String? = null): Client = native { NativeThreads.ensure(); Client(ffiConnect(url, token)) }

        /** [embedded] for Java and other blocking callers. */
        @JvmStatic
        @JvmOverloads
        fun embeddedBlocking(path: String, config: Map<String, String> = emptyMap()): Client =
            runBlocking { embedded(path, config) }

        /** [connect] for Java and other blocking callers. */
        @JvmStatic
        @JvmOverloads
        fun connectBlocking(url: String, token: String? = null): Client = runBlocking { connect(url, token) }
    }

    /** A producer, optionally in a producer [group]. */
    @JvmOverloads
    fun producer(group: String? = null): Producer = Producer(live { native { it.producer(group) } })

    /**
     * A transactional producer of [group]. [checker] answers the broker's check-backs about the
     * group's unresolved transactions (it runs on a background thread; throwing counts as
     * [Verdict.UNKNOWN]).
     */
    suspend fun transactionProducer(group: String, checker: TransactionChecker): TransactionProducer =
        TransactionProducer(live { native { it.transactionProducer(group, CheckerAdapter(checker)) } })

    /** [transactionProducer] for Java and other blocking callers. */
    fun transactionProducerBlocking(group: String, checker: TransactionChecker): TransactionProducer =
        runBlocking { transactionProducer(group, checker) }

    /**
     * A push consumer: a member of [group] on [topic] that takes its share of the queues and
     * rebalances as members come and go. Filter by tag expression ([filter]: `*`, `TagA`,
     * `TagA || TagB`) or by SQL92 over properties ([sql]).
     *
     * With a [listener], call [PushConsumer.start]: each message goes to the listener, which
     * returns normally to consume it or throws to have it redelivered. Without one, collect
     * [PushConsumer.messages] (or call [PushConsumer.receive]) and answer each message with
     * [Message.ack] or [Message.nack].
     */
    @JvmOverloads
    fun pushConsumer(
        group: String,
        topic: String,
        filter: String = "*",
        sql: String? = null,
        mode: ConsumeMode = ConsumeMode.CLUSTERING,
        orderly: Boolean = false,
        strategy: Strategy = Strategy.AVERAGE,
        start: StartPosition = StartPosition.First,
        listener: MessageListener? = null,
        consumeWorkers: Int? = null,
        rebalanceIntervalMs: Long? = null,
    ): PushConsumer {
        val options = FfiPushOptions(
            filter = if (sql == null) filter else null,
            sql = sql,
            mode = mode.wire,
            orderly = orderly,
            strategy = strategy.wire,
            start = when (start) {
                StartPosition.First -> "first"
                StartPosition.Last -> "last"
                is StartPosition.Timestamp -> "timestamp"
            },
            startTimestamp = (start as? StartPosition.Timestamp)?.epochMs,
            // The library hands out up to PREFETCH times as many messages as there are workers
            // (listener threads, see ListenerThreads; or messages a flow hands out unanswered),
            // so that the next batch is queued while the last one runs.
            consumeWorkers = (consumeWorkers ?: DEFAULT_WORKERS) * PREFETCH,
            rebalanceIntervalMs = rebalanceIntervalMs,
            pullWaitMs = null,
        )
        val consumer = PushConsumer(live { native { it.pushConsumer(group, topic, options) } }, listener, consumeWorkers ?: DEFAULT_WORKERS)
        if (listener != null) {
            listening.removeIf { it.get() == null }
            listening.add(WeakReference(consumer))
        }
        return consumer
    }

    /** A lease-based consumer of [topic] in [group] (receive, then ack or nack), with a tag
     * [filter] or an [sql] filter. */
    @JvmOverloads
    fun simpleConsumer(group: String, topic: String, filter: String = "*", sql: String? = null): SimpleConsumer =
        SimpleConsumer(live { native { it.simpleConsumer(group, topic, if (sql == null) filter else null, sql) } })

    /** Administration: topics, groups, offsets, dead letters, lookups. */
    fun admin(): Admin = Admin(live { native { it.admin() } })

    /** Closes the push consumers made by this client, then the connection. Idempotent. After
     * it, every call of the client and of what it made throws [FerryException.ConnectionError]. */
    suspend fun shutdown() {
        if (closed.get()) return
        // Listener calls in progress finish (and their acks count) before the consumers close.
        for (consumer in listening) consumer.get()?.stopListener()
        native { ffi.shutdown() }
    }

    /** [shutdown], blocking, then frees the native client: what `use {}` and try-with-resources
     * call. Idempotent. */
    override fun close() {
        if (closed.get()) return
        runBlocking { shutdown() }
        if (closed.compareAndSet(false, true)) ffi.close()
    }
}

/** Called by a push consumer for each message: return normally to consume it, throw to have it
 * redelivered (through retry, or in place for orderly consumers). Runs on a background thread. */
fun interface MessageListener {
    /** Handles one message. */
    fun onMessage(message: Message)
}

/** Answers the broker's check-back about a half message whose transaction is still open. */
fun interface TransactionChecker {
    /** How the transaction of this half message ended. */
    fun check(message: Message): Verdict
}

/** The local transaction of one transactional send: runs with the half message, says how it ended. */
fun interface LocalTransaction {
    /** Runs the local transaction. */
    fun execute(message: Message): Verdict
}

internal class CheckerAdapter(private val checker: TransactionChecker) : FfiTransactionChecker {
    override fun check(message: FfiMessage): String = try {
        checker.check(Message(message)).wire
    } catch (e: Throwable) {
        Verdict.UNKNOWN.wire
    }
}

internal class LocalTransactionAdapter(private val local: LocalTransaction) : dev.ferrymq.ffi.FfiLocalTransaction {
    override fun execute(message: FfiMessage): String = try {
        local.execute(Message(message)).wire
    } catch (e: Throwable) {
        Verdict.UNKNOWN.wire
    }
}
