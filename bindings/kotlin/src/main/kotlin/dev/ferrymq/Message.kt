package dev.ferrymq

import dev.ferrymq.ffi.FfiMessage
import java.nio.ByteBuffer
import java.nio.charset.CharacterCodingException
import java.nio.charset.CodingErrorAction
import java.util.concurrent.atomic.AtomicIntegerFieldUpdater
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
    msgId: String,
    topic: String,
    queueId: Int?,
    queueOffset: Long?,
    commitOffset: Long?,
    body: ByteArray,
    tag: String?,
    keys: List<String>,
    properties: Map<String, String>,
    bornTs: Long,
    storeTs: Long,
    reconsumeTimes: Int,
    receipt: String?,
    state: MessageState,
    private val settler: Settler? = null,
    /** The push consumer's id for this delivery (when a push consumer handed it out). */
    internal val deliveryId: Long = 0,
) {
    /** A message from its uniffi record. */
    internal constructor(raw: FfiMessage, settler: Settler? = null, deliveryId: Long = 0) : this(
        raw.msgId, raw.topic, raw.queueId, raw.queueOffset, raw.commitOffset, raw.body, raw.tag, raw.keys,
        raw.properties, raw.bornTs, raw.storeTs, raw.reconsumeTimes, raw.receipt, MessageState.of(raw.state),
        settler, deliveryId,
    )

    /** Unique id, stable through delay, retry, DLQ and transaction commit. */
    val msgId: String = msgId

    /** The topic it was published to (also for retried and dead letters). */
    val topic: String = topic

    /** Its queue; null for scheduled and half messages. */
    val queueId: Int? = queueId

    /** Its offset in the queue; null for scheduled and half messages. */
    val queueOffset: Long? = queueOffset

    /** Its position in the commit log. */
    val commitOffset: Long? = commitOffset

    /** The body, byte for byte. */
    val body: ByteArray = body

    /** The decoded [text], once asked for: [NOT_DECODED] before (a racy cache: decoding twice
     * gives the same string), so that a message costs no lazy holder until then. */
    @Volatile
    private var decoded: Any? = NOT_DECODED

    /** The body as UTF-8 text, or null when it is not valid UTF-8. */
    val text: String?
        get() {
            val known = decoded
            if (known !== NOT_DECODED) return known as String?
            return utf8(body).also { decoded = it }
        }

    /** The body in base64 (the contract's `body_base64`). */
    val bodyBase64: String
        get() = java.util.Base64.getEncoder().encodeToString(body)

    /** The tag, if any. */
    val tag: String? = tag

    /** The keys (indexed for lookup). */
    val keys: List<String> = keys

    /** The properties (matched by SQL filters). */
    val properties: Map<String, String> = properties

    /** When the producer made it, epoch ms. */
    val bornTs: Long = bornTs

    /** When the broker stored it, epoch ms. */
    val storeTs: Long = storeTs

    /** Deliveries before this one that failed. */
    val reconsumeTimes: Int = reconsumeTimes

    /** Stored, scheduled or half. */
    val state: MessageState = state

    /** The lease receipt of a message received by a [SimpleConsumer] (renewed by
     * [SimpleConsumer.changeInvisibleDuration]); null otherwise. */
    @Volatile
    var receipt: String? = receipt
        internal set

    internal fun toFfi() = FfiMessage(
        msgId, topic, queueId, queueOffset, commitOffset, body, tag, keys, properties, bornTs, storeTs,
        reconsumeTimes, receipt, state.name.lowercase(),
    )

    /** 1 once answered: set by the first answer, for settlers that defer answers and so check
     * them here (through [ANSWERED], so that a message carries no atomic object of its own). */
    @Volatile
    private var answered = 0

    /** Marks the message answered; false when it was already. */
    internal fun answer(): Boolean = ANSWERED.compareAndSet(this, 0, 1)

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
        /** [decoded] before [text] was asked for. */
        val NOT_DECODED = Any()

        val ANSWERED: AtomicIntegerFieldUpdater<Message> =
            AtomicIntegerFieldUpdater.newUpdater(Message::class.java, "answered")

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
