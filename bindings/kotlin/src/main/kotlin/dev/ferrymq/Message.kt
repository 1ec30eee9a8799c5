package dev.ferrymq

import dev.ferrymq.ffi.FfiMessage
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import kotlinx.coroutines.runBlocking

/** Answers a message on behalf of whoever handed it out. */
internal interface Settler {
    suspend fun ack(message: Message)
    suspend fun nack(message: Message, delayMs: Long?)
}

/**
 * A stored message, as every SDK shows it (the contract's "Message out").
 *
 * A message handed out by a [PushConsumer]'s flow or [PushConsumer.receive], or received by a
 * [SimpleConsumer], is answered with [ack] (consumed) or [nack] (redeliver); other messages
 * (lookups, the DLQ, listener calls) have no one to answer and [ack] fails with
 * [FerryException.InvalidArgument].
 */
class Message internal constructor(
    raw: FfiMessage,
    private val settler: Settler? = null,
    /** The push consumer's id for this delivery (when a push consumer handed it out). */
    internal val deliveryId: Long = 0,
) {
    /** Unique id, stable through delay, retry, DLQ and transaction commit. */
    val msgId: String = raw.msgId

    /** The topic it was published to (also for retried and dead letters). */
    val topic: String = raw.topic

    /** Its queue; null for scheduled and half messages. */
    val queueId: Int? = raw.queueId

    /** Its offset in the queue; null for scheduled and half messages. */
    val queueOffset: Long? = raw.queueOffset

    /** Its position in the commit log. */
    val commitOffset: Long? = raw.commitOffset

    /** The body, byte for byte. */
    val body: ByteArray = raw.body

    /** The body as UTF-8 text, or null when it is not valid UTF-8. */
    val text: String? by lazy { utf8(body) }

    /** The tag, if any. */
    val tag: String? = raw.tag

    /** The keys (indexed for lookup). */
    val keys: List<String> = raw.keys

    /** The properties (matched by SQL filters). */
    val properties: Map<String, String> = raw.properties

    /** When the producer made it, epoch ms. */
    val bornTs: Long = raw.bornTs

    /** When the broker stored it, epoch ms. */
    val storeTs: Long = raw.storeTs

    /** Deliveries before this one that failed. */
    val reconsumeTimes: Int = raw.reconsumeTimes

    /** Stored, scheduled or half. */
    val state: MessageState = MessageState.of(raw.state)

    /** The lease receipt of a message received by a [SimpleConsumer] (renewed by
     * [SimpleConsumer.changeInvisibleDuration]); null otherwise. */
    @Volatile
    var receipt: String? = raw.receipt
        internal set

    internal fun toFfi() = FfiMessage(
        msgId, topic, queueId, queueOffset, commitOffset, body, tag, keys, properties, bornTs, storeTs,
        reconsumeTimes, receipt, state.name.lowercase(),
    )

    /** Set by the first answer, for settlers that defer answers and so check them here. */
    private val answered = java.util.concurrent.atomic.AtomicBoolean()

    /** Marks the message answered; false when it was already. */
    internal fun answer(): Boolean = answered.compareAndSet(false, true)

    private fun settler(): Settler = settler ?: throw FerryException.of(
        "invalid-argument", "message $msgId was not handed out by a consumer: there is nothing to ack", "/receipt",
    )

    /** Marks the message consumed. [FerryException.Conflict] when it was answered already. */
    suspend fun ack() = settler().ack(this)

    /** Marks the message failed: it comes back after [delayMs], or after the retry delay when
     * null (in place, after the orderly suspension, for orderly consumers). */
    suspend fun nack(delayMs: Long? = null) = settler().nack(this, delayMs)

    /** [ack] for Java and other blocking callers. */
    fun ackBlocking() = runBlocking { ack() }

    /** [nack] for Java and other blocking callers. */
    @JvmOverloads
    fun nackBlocking(delayMs: Long? = null) = runBlocking { nack(delayMs) }

    override fun toString(): String =
        "Message(msgId=$msgId, topic=$topic, queueId=$queueId, queueOffset=$queueOffset, tag=$tag, " +
            "keys=$keys, reconsumeTimes=$reconsumeTimes, state=$state, body=${text ?: "${body.size} bytes"})"

    private companion object {
        fun utf8(bytes: ByteArray): String? = try {
            Charsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT)
                .decode(ByteBuffer.wrap(bytes))
                .toString()
        } catch (e: CharacterCodingException) {
            null
        }
    }
}
