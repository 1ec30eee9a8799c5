package dev.ferrymq

import dev.ferrymq.ffi.FfiDelivery
import dev.ferrymq.ffi.FfiPushConsumer
import dev.ferrymq.ffi.FfiSimpleConsumer
import java.io.Closeable
import java.util.concurrent.atomic.AtomicBoolean
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
 */
class PushConsumer internal constructor(
    private val ffi: FfiPushConsumer,
    private val hasListener: Boolean,
) : Closeable {
    private val started = AtomicBoolean(false)

    /** The consumer group. */
    val group: String get() = ffi.group()

    /** The topic. */
    val topic: String get() = ffi.topic()

    /** This member's client id, unique in the group. */
    val clientId: String get() = ffi.clientId()

    /** The queues this member consumes now. */
    fun assignment(): List<QueueRef> = ffi.assignment().map { QueueRef(it.topic, it.queueId) }

    /** Joins the group and starts consuming. [FerryException.NotFound] when the topic does not
     * exist; [FerryException.Conflict] when started twice or after close. */
    suspend fun start() {
        check(started.compareAndSet(false, true)) { "the consumer was started already" }
        native { ffi.start() }
    }

    /** [start] for Java and other blocking callers. */
    fun startBlocking() = runBlocking { start() }

    /**
     * The messages, for a consumer without a listener. Answer each with [Message.ack] or
     * [Message.nack] (an orderly consumer hands out a queue's next message only after the
     * previous one is answered).
     *
     * The flow owns the consumer's life: collecting it starts the consumer (if [start] was not
     * called), and when the collection ends, completed or cancelled, the consumer closes.
     * Messages handed out and not answered by then go back to the group, uncommitted, and are
     * delivered again to the member that takes their queue. Collect it once.
     */
    fun messages(): Flow<Message> = flow {
        require(!hasListener) { "this consumer has a listener: its messages go to the listener" }
        if (started.compareAndSet(false, true)) native { ffi.start() }
        try {
            while (true) {
                val delivery = native { ffi.recv(null) } ?: break
                emit(delivered(delivery))
            }
        } finally {
            withContext(NonCancellable) { shutdown() }
        }
    }

    /** The next message, waiting up to [timeoutMs] (forever when null); null on timeout or once
     * the consumer is closed. For a consumer without a listener, after [start]. */
    suspend fun receive(timeoutMs: Long? = null): Message? {
        require(!hasListener) { "this consumer has a listener: its messages go to the listener" }
        return native { ffi.recv(timeoutMs) }?.let { delivered(it) }
    }

    /** [receive] for Java and other blocking callers. */
    @JvmOverloads
    fun receiveBlocking(timeoutMs: Long? = null): Message? = runBlocking { receive(timeoutMs) }

    private fun delivered(delivery: FfiDelivery): Message = Message(delivery.message(), DeliverySettler(delivery))

    /** Leaves the group cleanly: stops pulling, lets running listeners finish, commits offsets,
     * releases orderly leases; unanswered messages go back to the group. Idempotent. */
    suspend fun shutdown() = native { ffi.shutdown() }

    /** [shutdown], blocking. */
    override fun close() = runBlocking { shutdown() }
}

private class DeliverySettler(private val delivery: FfiDelivery) : Settler {
    override suspend fun ack(message: Message) = native { delivery.ack() }
    override suspend fun nack(message: Message, delayMs: Long?) = native { delivery.nack(delayMs) }
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
