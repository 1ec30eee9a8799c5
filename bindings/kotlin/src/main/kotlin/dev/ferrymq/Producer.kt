package dev.ferrymq

import dev.ferrymq.ffi.FfiProducer
import dev.ferrymq.ffi.FfiTransactionProducer
import kotlinx.coroutines.runBlocking

/**
 * Publishes messages. A send that fails transiently (broker unavailable, timeout, broken
 * connection) is retried on another queue before the error is thrown.
 *
 * Sends go through the library's JNI [FastPath] (one native call each, the message in
 * uniffi's serialization, written and read by [Wire]); [sendOneway] through uniffi.
 */
class Producer internal constructor(private val ffi: FfiProducer) {
    /** The native producer's id on the fast path (the registry holds it as long as [ffi] lives). */
    private val id: Long = native { FastPath.ensure(); ffi.fastId().toLong() }

    private fun one(message: OutgoingMessage) = Wire.outgoing(message)

    private fun batch(messages: List<OutgoingMessage>) = Wire.outgoings(messages)

    private fun result(bytes: ByteArray) = Wire.sendResult(bytes)

    private fun results(bytes: ByteArray) = Wire.sendResults(bytes)

    /**
     * Publishes one message and returns once it is stored and visible to consumers (or
     * scheduled, when delayed).
     *
     * @param tag matched by tag filters.
     * @param keys indexed for [Admin.findMessages].
     * @param properties matched by SQL filters.
     * @param delayLevel one of the broker's delay levels (1-based); at most one of
     *   [delayLevel], [delayMs] and [deliverAt].
     * @param delayMs deliver this many milliseconds after the send.
     * @param deliverAt deliver at this epoch-ms time (at once if it has passed).
     * @param shardingKey the FIFO group: messages with one key land in one queue, in order.
     * @param idempotencyKey a repeat with this key within the dedup window returns the first result.
     */
    suspend fun send(
        topic: String,
        body: ByteArray,
        tag: String? = null,
        keys: List<String> = emptyList(),
        properties: Map<String, String> = emptyMap(),
        delayLevel: Int? = null,
        delayMs: Long? = null,
        deliverAt: Long? = null,
        shardingKey: String? = null,
        idempotencyKey: String? = null,
    ): SendResult {
        val message = one(OutgoingMessage(body, tag, keys, properties, delayLevel, delayMs, deliverAt, shardingKey, idempotencyKey))
        return result(native { FastPath.call { token -> FastPath.send(id, topic, message, token) } })
    }

    /** [send] for Java and other blocking callers. */
    @JvmOverloads
    fun sendBlocking(
        topic: String,
        body: ByteArray,
        tag: String? = null,
        keys: List<String> = emptyList(),
        properties: Map<String, String> = emptyMap(),
        delayLevel: Int? = null,
        delayMs: Long? = null,
        deliverAt: Long? = null,
        shardingKey: String? = null,
        idempotencyKey: String? = null,
    ): SendResult {
        val message = one(OutgoingMessage(body, tag, keys, properties, delayLevel, delayMs, deliverAt, shardingKey, idempotencyKey))
        return result(native { FastPath.sendBlocking(id, topic, message) })
    }

    /** Publishes a batch atomically: all of it is stored, or none. Results come in order. */
    suspend fun sendBatch(topic: String, messages: List<OutgoingMessage>): List<SendResult> {
        val encoded = batch(messages)
        return results(native { FastPath.call { token -> FastPath.sendBatch(id, topic, encoded, token) } })
    }

    /** [sendBatch] for Java and other blocking callers. */
    fun sendBatchBlocking(topic: String, messages: List<OutgoingMessage>): List<SendResult> =
        results(native { FastPath.sendBatchBlocking(id, topic, batch(messages)) })

    /** Publishes one message in the background without waiting for the result; a failure is
     * only logged. Invalid arguments are still thrown at once. Does not suspend. */
    fun sendOneway(topic: String, message: OutgoingMessage) = native { ffi.sendOneway(topic, message.toFfi()) }
}

/**
 * A producer of transactional messages for one producer group: [sendInTransaction] stores a
 * half message (invisible to consumers), runs the local transaction, and commits or rolls back
 * as it answers. Transactions left [Verdict.UNKNOWN] are settled later by the group's
 * [TransactionChecker]. [close] stops answering check-backs.
 */
class TransactionProducer internal constructor(private val ffi: FfiTransactionProducer) : java.io.Closeable {
    /** The producer group. */
    val group: String get() = ffi.group()

    /**
     * Sends [body] as a half message to [topic], runs [localTransaction] with it (on a
     * background thread; throwing counts as [Verdict.UNKNOWN]) and ends the transaction as it
     * answers. The result carries the `transactionId`. Attributes as for [Producer.send].
     */
    suspend fun sendInTransaction(
        topic: String,
        body: ByteArray,
        tag: String? = null,
        keys: List<String> = emptyList(),
        properties: Map<String, String> = emptyMap(),
        shardingKey: String? = null,
        localTransaction: LocalTransaction,
    ): SendResult {
        val message = OutgoingMessage(body, tag, keys, properties, shardingKey = shardingKey)
        return native { ffi.sendInTransaction(topic, message.toFfi(), LocalTransactionAdapter(localTransaction)) }.toSdk()
    }

    /** [sendInTransaction] for Java and other blocking callers (the local transaction first,
     * so that the attributes can be left out). */
    @JvmOverloads
    fun sendInTransactionBlocking(
        topic: String,
        body: ByteArray,
        localTransaction: LocalTransaction,
        tag: String? = null,
        keys: List<String> = emptyList(),
        properties: Map<String, String> = emptyMap(),
        shardingKey: String? = null,
    ): SendResult = runBlocking { sendInTransaction(topic, body, tag, keys, properties, shardingKey, localTransaction) }

    /** Ends a transaction explicitly with [Verdict.COMMIT] or [Verdict.ROLLBACK]. */
    suspend fun endTransaction(transactionId: String, verdict: Verdict) =
        native { ffi.endTransaction(transactionId, verdict.wire) }

    /** [endTransaction] for Java and other blocking callers. */
    fun endTransactionBlocking(transactionId: String, verdict: Verdict) =
        runBlocking { endTransaction(transactionId, verdict) }

    /** Stops answering check-backs; open transactions stay open for another producer of the group. */
    override fun close() {
        ffi.shutdown()
        ffi.close()
    }
}
