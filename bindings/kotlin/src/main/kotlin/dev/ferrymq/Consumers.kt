package dev.ferrymq

import dev.ferrymq.ffi.FfiPushConsumer
import dev.ferrymq.ffi.FfiSimpleConsumer
import java.io.Closeable
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicBoolean
import java.util.concurrent.locks.ReentrantLock
import kotlin.concurrent.withLock
import kotlinx.coroutines.NonCancellable
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.flow
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withContext

/**
 * A member of a consumer group on one topic (made by [Client.pushConsumer]). It heartbeats,
 * takes its share of the queues with its [Strategy], pulls them with long polling and
 * rebalances when members join or leave; at steady state no message goes to two members.
 *
 * Consume with a [MessageListener] given at creation (then [start]), or as a [Flow] with
 * [messages], or one at a time with [receive]. [close] leaves the group cleanly.
 *
 * Messages are taken, settled, acked and nacked through the library's JNI [FastPath]; the
 * rest goes through uniffi.
 */
class PushConsumer internal constructor(
    private val ffi: FfiPushConsumer,
    listener: MessageListener?,
    /** Listener calls at once, with a listener; the library hands out [PREFETCH] times as many. */
    private val workers: Int,
) : Closeable {
    private val started = AtomicBoolean(false)

    /** The native consumer's id on the fast path (the registry holds it as long as [ffi] lives). */
    private val id: Long = native { FastPath.ensure(); ffi.fastId().toLong() }
    private val listenerThreads: ListenerThreads? = listener?.let { ListenerThreads(ffi, id, it, workers) }
    private val hasListener: Boolean get() = listenerThreads != null

    /** The consumer group. */
    val group: String get() = ffi.group()

    /** The topic. */
    val topic: String get() = ffi.topic()

    /** This member's client id, unique in the group. */
    val clientId: String get() = ffi.clientId()

    /** The queues this member consumes now. */
    fun assignment(): List<QueueRef> = ffi.assignment().map { QueueRef(it.topic, it.queueId) }

    /** Joins the group and starts consuming; from [StartPosition.Last] it returns once the
     * queues it took know where they start, so a message sent afterwards is consumed.
     * [FerryException.NotFound] when the topic does not exist; [FerryException.Conflict] when
     * started twice or after close. */
    suspend fun start() {
        check(started.compareAndSet(false, true)) { "the consumer was started already" }
        native { ffi.start() }
        listenerThreads?.start()
    }

    /** [start] for Java and other blocking callers. */
    fun startBlocking() = runBlocking { start() }

    /**
     * The messages, for a consumer without a listener. Answer each with [Message.ack] or
     * [Message.nack] (an orderly consumer hands out a queue's next message only after the
     * previous one is answered). Acks are sent to the library many per call: with the flow's
     * next take of messages, or when the collection ends (before the consumer closes, so they
     * count); a second answer to one message is a [FerryException.Conflict].
     *
     * The flow owns the consumer's life: collecting it starts the consumer (if [start] was not
     * called), and when the collection ends, completed or cancelled, the consumer closes.
     * Messages handed out and not answered by then, and those taken into the flow's buffer and
     * not emitted yet, go back to the group, uncommitted, and are delivered again to the member
     * that takes their queue. Collect it once.
     *
     * The flow takes every message queued in the library in one call, and the library keeps
     * up to [PREFETCH] times `consumeWorkers` messages taken and not answered, so that the
     * next batch is ready while the flow emits the last one.
     */
    fun messages(): Flow<Message> = flow {
        require(!hasListener) { "this consumer has a listener: its messages go to the listener" }
        if (started.compareAndSet(false, true)) native { ffi.start() }
        flowAnswers.open()
        try {
            while (true) {
                // The acks since the last batch in one call, then every message queued in one
                // call (at most `workers * PREFETCH` are taken and not answered anyway).
                val batch = flowAnswers.whileTaking { recvBatch(workers * PREFETCH, null, flowSettler) }
                if (batch.isEmpty()) break
                for (message in batch) emit(message)
            }
        } finally {
            withContext(NonCancellable) {
                // The acks not sent yet count: they go before the consumer closes.
                try {
                    flowAnswers.close()
                } finally {
                    shutdown()
                }
            }
        }
    }

    /**
     * The answers (delivery ids, as for `settle`) of the flow's acks, sent many per call: with
     * the flow's next take, or when it ends. While the flow waits for messages, or once it has
     * ended, an ack goes to the library at once (a deferred one could hold back the very
     * messages the flow waits for).
     */
    private inner class FlowAnswers {
        private var ids = LongArray(64)
        private var size = 0
        private var open = false
        private var taking = false

        fun open() = synchronized(this) { open = true }

        /** Whether [deliveryId]'s ack was kept for later (else the caller sends it). */
        fun defer(deliveryId: Long): Boolean = synchronized(this) {
            if (!open || taking) return false
            if (size == ids.size) ids = ids.copyOf(size * 2)
            ids[size++] = deliveryId
            true
        }

        /** Takes the answers kept so far out (holding the lock). */
        private fun drain(): LongArray = ids.copyOf(size).also { size = 0 }

        /** Sends the answers kept, then runs [take] with acks going straight to the library. */
        suspend fun <T> whileTaking(take: suspend () -> T): T {
            val answers = synchronized(this) {
                taking = true
                drain()
            }
            try {
                if (answers.isNotEmpty()) native { FastPath.settle(id, answers) }
                return take()
            } finally {
                synchronized(this) { taking = false }
            }
        }

        /** Sends the answers kept; later acks go straight to the library. */
        fun close() {
            val answers = synchronized(this) {
                open = false
                drain()
            }
            if (answers.isNotEmpty()) native { FastPath.settle(id, answers) }
        }
    }

    private val flowAnswers = FlowAnswers()

    /** Answers the flow's messages: an ack is kept for the flow's next call when it can be. */
    private val flowSettler = object : Settler {
        override suspend fun ack(message: Message) {
            answered(message)
            if (!flowAnswers.defer(message.deliveryId)) native { FastPath.ack(id, message.deliveryId) }
        }

        override suspend fun nack(message: Message, delayMs: Long?) {
            answered(message)
            native { FastPath.nack(id, message.deliveryId, delayMs) }
        }
    }

    /** Marks [message] answered; [FerryException.Conflict] when it was already. */
    private fun answered(message: Message) {
        if (!message.answer()) {
            throw FerryException.Conflict("conflict", "delivery ${message.deliveryId} was already acked or nacked")
        }
    }

    /** The next message, waiting up to [timeoutMs] (forever when null); null on timeout or once
     * the consumer is closed. For a consumer without a listener, after [start]. */
    suspend fun receive(timeoutMs: Long? = null): Message? {
        require(!hasListener) { "this consumer has a listener: its messages go to the listener" }
        return recvBatch(1, timeoutMs, settler).firstOrNull()
    }

    /** Waits up to [timeoutMs] (forever when null) for a message, then takes every one ready,
     * [max] at most, answered by [settler]; empty on timeout or once the consumer is closed. */
    private suspend fun recvBatch(max: Int, timeoutMs: Long?, settler: Settler): List<Message> = native {
        val bytes = FastPath.call { token -> FastPath.recvBatch(id, max, timeoutMs, token) }
        Wire.delivered(bytes, settler)
    }

    /** [receive] for Java and other blocking callers. */
    @JvmOverloads
    fun receiveBlocking(timeoutMs: Long? = null): Message? = runBlocking { receive(timeoutMs) }

    private val settler = object : Settler {
        override suspend fun ack(message: Message) = native { FastPath.ack(id, message.deliveryId) }
        override suspend fun nack(message: Message, delayMs: Long?) = native { FastPath.nack(id, message.deliveryId, delayMs) }
    }

    /** Stops the listener's threads taking messages and waits for the calls in progress. */
    internal fun stopListener() = listenerThreads?.stop()

    /** Leaves the group cleanly: stops pulling, lets running listeners finish, commits offsets,
     * releases orderly leases; unanswered messages go back to the group. Idempotent. */
    suspend fun shutdown() {
        stopListener()
        native { ffi.shutdown() }
    }

    /** [shutdown], blocking. */
    override fun close() = runBlocking { shutdown() }
}

/**
 * How many messages a push consumer may have taken and not answered per worker (listener
 * thread, or message a flow hands out): the native consumer's `consume_workers` is this many
 * times `consumeWorkers`, so that a poll finds the next pulled batch queued rather than the
 * one or two messages the library refilled since the last answers.
 */
internal const val PREFETCH = 4

/**
 * The threads that run a push consumer's listener: as many as the consumer's workers, so that
 * as many listener calls can run at once. One thread at a time waits in the native library
 * for messages and takes every one queued (one call in, instead of a callback out per
 * message); it keeps the first and leaves the rest here for the others. Whether it wakes
 * another thread for them depends on how long listener calls take (a moving average): when
 * the messages left would keep one thread busy for more than [HELP_AFTER_NANOS], or before
 * any call was timed, it wakes one, which wakes the next while that still holds. A quick
 * listener so runs a whole batch on one thread, without a thread wake-up per message (each
 * costs microseconds of CPU on both sides, more than such a call); a slow one gets every
 * thread. Each thread answers the messages it ran in one call before it waits, and every
 * [SETTLE_EVERY] messages; the thread that polls answers in the poll's own call.
 *
 * The library hands out up to [PREFETCH] times as many messages as there are threads; at
 * most [workers] listener calls still run at once. Messages taken and not yet run go back to
 * the group, like any unanswered message, when the consumer closes.
 */
internal class ListenerThreads(
    private val ffi: FfiPushConsumer,
    /** [ffi]'s id on the [FastPath]. */
    private val id: Long,
    private val listener: MessageListener,
    private val workers: Int,
) {
    private val lock = ReentrantLock()
    private val ready = lock.newCondition()
    private val idle = lock.newCondition()
    private val waiting = ArrayDeque<Message>()
    private var polling = false
    private var stopping = false
    private var ended = false

    /** Messages taken and not answered yet (run or not). */
    private var open = 0
    private val threads = List(workers) { i ->
        Thread(::work, "ferrymq-listener-${ffi.group()}-$i").apply { isDaemon = true }
    }

    fun start() = threads.forEach { it.start() }

    /** One thread's answers (a delivery id when consumed, negated when failed), sent in one
     * call. */
    private inner class Answers {
        private var ids = LongArray(SETTLE_EVERY)
        var size = 0
            private set

        fun add(answer: Long) {
            if (size == ids.size) ids = ids.copyOf(size * 2)
            ids[size++] = answer
        }

        /** Takes the answers out, for a call that sends them. */
        fun drain(): LongArray = ids.copyOf(size).also { size = 0 }

        /** Counts [n] answers sent. */
        fun sent(n: Int) {
            if (n == 0) return
            lock.withLock {
                open -= n
                if (open == 0) idle.signalAll()
            }
        }

        fun settle() {
            if (size == 0) return
            val answers = drain()
            try {
                FastPath.settle(id, answers)
            } catch (e: Exception) {
                // Cannot fail for ids; the consumer closing meanwhile gave them back already.
            }
            sent(answers.size)
        }
    }

    /** The moving average of a listener call's duration, in ns; negative before the first. */
    @Volatile
    private var callNanos = -1L

    /** Counts one listener call of [nanos] in [callNanos] (racy updates lose a sample at worst). */
    private fun timed(nanos: Long) {
        val mean = callNanos
        callNanos = if (mean < 0) nanos else mean + (nanos - mean) / 8
    }

    /** Whether the messages waiting are worth waking another thread for (holding the lock). */
    private fun needsHelp(): Boolean {
        if (waiting.isEmpty()) return false
        val mean = callNanos
        return mean < 0 || waiting.size * mean > HELP_AFTER_NANOS
    }

    /** Takes a waiting message, if any (holding the lock). */
    private fun takeWaiting(): Message? {
        if (stopping || ended) return null
        val first = waiting.removeFirstOrNull() ?: return null
        if (needsHelp()) ready.signal()
        return first
    }

    /** The next message to hand to the listener; null when this thread should end. */
    private fun next(answers: Answers): Message? {
        if (answers.size < SETTLE_EVERY) lock.withLock { takeWaiting() }?.let { return it }
        while (true) {
            // Take a waiting message, or become the thread that polls (and answers in the poll's
            // own call), or answer and wait: never wait holding answers, which keep messages
            // in flight and so hold back the next ones.
            val poll = lock.withLock {
                if (stopping || ended) return null
                takeWaiting()?.let { return it }
                when {
                    !polling -> {
                        polling = true
                        true
                    }
                    answers.size == 0 -> {
                        ready.await()
                        false
                    }
                    else -> false
                }
            }
            if (poll) break
            answers.settle()
        }
        val answered = answers.drain()
        // Counted as answered before the call, which settles them first thing and may then
        // wait long for messages.
        answers.sent(answered.size)
        val batch = try {
            // No settler: a listener's messages are answered by how the call returns.
            Wire.delivered(FastPath.recvBatchBlocking(id, answered, workers * PREFETCH), null)
        } catch (e: Throwable) {
            emptyList()
        }
        lock.withLock {
            polling = false
            if (batch.isEmpty()) ended = true
            if (ended || stopping) {
                // Stopping: what was taken stays unanswered; the native shutdown gives it back.
                ready.signalAll()
                return null
            }
            open += batch.size
            for (i in 1 until batch.size) waiting.addLast(batch[i])
            if (needsHelp()) ready.signal()
            return batch[0]
        }
    }

    private fun work() {
        val answers = Answers()
        try {
            while (true) {
                val message = next(answers) ?: return
                val started = System.nanoTime()
                val consumed = try {
                    listener.onMessage(message)
                    true
                } catch (e: Throwable) {
                    false
                }
                timed(System.nanoTime() - started)
                answers.add(if (consumed) message.deliveryId else -message.deliveryId)
            }
        } finally {
            answers.settle()
        }
    }

    /** Takes no more messages and waits (up to [timeoutMs]) until the listener calls in progress
     * are answered (not for a call on this very thread: a listener that closes its consumer). */
    fun stop(timeoutMs: Long = 10_000) {
        val own = Thread.currentThread() in threads
        lock.withLock {
            stopping = true
            ready.signalAll()
            if (own) return
            var left = TimeUnit.MILLISECONDS.toNanos(timeoutMs)
            // Messages taken but never started stay open: count only those a thread holds.
            while (open > waiting.size && left > 0) left = idle.awaitNanos(left)
        }
    }

    private companion object {
        const val SETTLE_EVERY = 8

        /** Work left for one thread, in ns of listener calls, above which another one helps. */
        const val HELP_AFTER_NANOS = 50_000L
    }
}

/**
 * A lease-based consumer of one topic for one group (RocketMQ 5's simple consumer):
 * [receive] hands out messages that stay invisible to the rest of the group for a while;
 * [ack] what was processed and [nack] what should come back. Nothing runs in the background.
 */
class SimpleConsumer internal constructor(private val ffi: FfiSimpleConsumer) : Closeable {
    private val settler = object : Settler {
        override suspend fun ack(message: Message) = this@SimpleConsumer.ack(message)
        override suspend fun nack(message: Message, delayMs: Long?) = this@SimpleConsumer.nack(message, delayMs)
    }

    /** The consumer group. */
    val group: String get() = ffi.group()

    /** The topic. */
    val topic: String get() = ffi.topic()

    /** Receives up to [maxMessages] (1 to 1000), waiting up to [waitMs] (at most 30 000) when
     * none is available. Each stays invisible to the rest of the group for [invisibleMs]
     * (1 000 to 43 200 000) unless acked, nacked or changed. */
    suspend fun receive(maxMessages: Int = 16, waitMs: Long = 0, invisibleMs: Long = 30_000): List<Message> =
        native { ffi.receive(maxMessages, waitMs, invisibleMs) }.map { Message(it, settler) }

    /** [receive] for Java and other blocking callers. */
    @JvmOverloads
    fun receiveBlocking(maxMessages: Int = 16, waitMs: Long = 0, invisibleMs: Long = 30_000): List<Message> =
        runBlocking { receive(maxMessages, waitMs, invisibleMs) }

    /** Marks a received message done. [FerryException.NotFound] for a receipt the broker does not
     * hold; [FerryException.Conflict] when its lease expired or it was acked already. */
    suspend fun ack(message: Message) = native { ffi.ack(message.toFfi()) }

    /** [ack] for Java and other blocking callers. */
    fun ackBlocking(message: Message) = runBlocking { ack(message) }

    /** Gives a received message back: it returns with `reconsumeTimes + 1` after [delayMs]
     * (default: the retry delay), or goes to the dead-letter queue after the group's maximum. */
    suspend fun nack(message: Message, delayMs: Long? = null) = native { ffi.nack(message.toFfi(), delayMs) }

    /** [nack] for Java and other blocking callers. */
    @JvmOverloads
    fun nackBlocking(message: Message, delayMs: Long? = null) = runBlocking { nack(message, delayMs) }

    /** Sets a received message's remaining invisibility to [invisibleMs] and gives [message] its
     * new receipt (the old one stops working). [FerryException.NotFound] when the lease is gone. */
    suspend fun changeInvisibleDuration(message: Message, invisibleMs: Long) {
        message.receipt = native { ffi.changeInvisibleDuration(message.toFfi(), invisibleMs) }
    }

    /** [changeInvisibleDuration] for Java and other blocking callers. */
    fun changeInvisibleDurationBlocking(message: Message, invisibleMs: Long) =
        runBlocking { changeInvisibleDuration(message, invisibleMs) }

    /** Leaves the group at once: messages held unacknowledged go back without counting a reconsume. */
    suspend fun shutdown() = native { ffi.shutdown() }

    /** [shutdown], blocking. */
    override fun close() = runBlocking { shutdown() }
}
