package dev.ferrymq

import dev.ferrymq.ffi.FfiConverterMapStringString
import dev.ferrymq.ffi.FfiConverterOptionalInt
import dev.ferrymq.ffi.FfiConverterOptionalLong
import dev.ferrymq.ffi.FfiConverterOptionalString
import dev.ferrymq.ffi.FfiConverterSequenceString
import java.nio.ByteBuffer
import java.util.Arrays

/**
 * The fast path's per-message records, read and written here field by field in uniffi's
 * serialization (the Kotlin twin of `src/wire.rs`): the same bytes as the generated
 * converters, without their intermediate records.
 *
 * Why: for a batch of 100 sends the generated converters size every field (boxing each size),
 * write into a buffer sized for the worst case and copy it out again, and the results come back
 * as `FfiSendResult`s to convert; for the messages a push consumer hands out they build an
 * `FfiDelivered` and an `FfiMessage` (with a list, a map and strings of their own) per message
 * before the [Message]. Here an outgoing batch is written once into an array of its exact size
 * (a body copied whole), results and deliveries are read straight into [SendResult]s and
 * [Message]s, and a delivered message's topic, the same for a whole batch, is decoded once.
 * Everything but bodies and ids (the rare tag, keys, properties, delays and keys of an outgoing
 * message) still goes through the generated converters, so both encodings agree on every
 * field; `WireTest` compares them.
 */
internal object Wire {
    /** What follows the body of an outgoing message with no other field set: no tag, no keys,
     * no properties, no delay level, delay or time, no sharding or idempotency key. */
    private val PLAIN_REST = byteArrayOf(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)

    /** The fields of [message] after its body, in declaration order. */
    private fun rest(message: OutgoingMessage): ByteArray {
        with(message) {
            if (tag == null && keys.isEmpty() && properties.isEmpty() && delayLevel == null && delayMs == null &&
                deliverAt == null && shardingKey == null && idempotencyKey == null
            ) {
                return PLAIN_REST
            }
        }
        val size = FfiConverterOptionalString.allocationSize(message.tag) +
            FfiConverterSequenceString.allocationSize(message.keys) +
            FfiConverterMapStringString.allocationSize(message.properties) +
            FfiConverterOptionalInt.allocationSize(message.delayLevel) +
            FfiConverterOptionalLong.allocationSize(message.delayMs) +
            FfiConverterOptionalLong.allocationSize(message.deliverAt) +
            FfiConverterOptionalString.allocationSize(message.shardingKey) +
            FfiConverterOptionalString.allocationSize(message.idempotencyKey)
        val buffer = ByteBuffer.allocate(size.toInt())
        FfiConverterOptionalString.write(message.tag, buffer)
        FfiConverterSequenceString.write(message.keys, buffer)
        FfiConverterMapStringString.write(message.properties, buffer)
        FfiConverterOptionalInt.write(message.delayLevel, buffer)
        FfiConverterOptionalLong.write(message.delayMs, buffer)
        FfiConverterOptionalLong.write(message.deliverAt, buffer)
        FfiConverterOptionalString.write(message.shardingKey, buffer)
        FfiConverterOptionalString.write(message.idempotencyKey, buffer)
        return buffer.array().copyOf(buffer.position())
    }

    /** One outgoing message, as `FfiConverterTypeFfiOutgoing` writes it. */
    fun outgoing(message: OutgoingMessage): ByteArray {
        val rest = rest(message)
        val out = Writer(4 + message.body.size + rest.size)
        out.bytes(message.body)
        out.raw(rest)
        return out.done()
    }

    /** A batch of outgoing messages, as `FfiConverterSequenceTypeFfiOutgoing` writes it. */
    fun outgoings(messages: List<OutgoingMessage>): ByteArray {
        val rests = arrayOfNulls<ByteArray>(messages.size)
        var size = 4
        for ((i, message) in messages.withIndex()) {
            val rest = rest(message)
            rests[i] = rest
            size += 4 + message.body.size + rest.size
        }
        val out = Writer(size)
        out.int(messages.size)
        for ((i, message) in messages.withIndex()) {
            out.bytes(message.body)
            out.raw(rests[i]!!)
        }
        return out.done()
    }

    /** One `FfiSendResult`, all of [bytes], as a [SendResult]. */
    fun sendResult(bytes: ByteArray): SendResult = Reader(bytes).run { sendResult().also { end() } }

    /** A sequence of `FfiSendResult`, all of [bytes]. */
    fun sendResults(bytes: ByteArray): List<SendResult> = Reader(bytes).run {
        val results = List(count()) { sendResult() }
        end()
        results
    }

    /**
     * A sequence of `FfiDelivered`, all of [bytes], as [Message]s answered by [settler] (each
     * with its delivery id).
     */
    fun delivered(bytes: ByteArray, settler: Settler?): List<Message> = Reader(bytes).run {
        val messages = List(count()) { delivered(settler) }
        end()
        messages
    }

    /** Writes big-endian numbers and byte arrays into an array of a known size. */
    private class Writer(size: Int) {
        private val out = ByteArray(size)
        private var at = 0

        fun int(value: Int) {
            out[at] = (value ushr 24).toByte()
            out[at + 1] = (value ushr 16).toByte()
            out[at + 2] = (value ushr 8).toByte()
            out[at + 3] = value.toByte()
            at += 4
        }

        fun bytes(value: ByteArray) {
            int(value.size)
            raw(value)
        }

        fun raw(value: ByteArray) {
            System.arraycopy(value, 0, out, at, value.size)
            at += value.size
        }

        fun done(): ByteArray {
            check(at == out.size) { "wrote $at bytes of ${out.size}" }
            return out
        }
    }

    /** Reads uniffi's serialization from an array. */
    private class Reader(private val bytes: ByteArray) {
        private var at = 0

        /** The last topic read, reused while the next ones have the same bytes. */
        private var topic: String? = null
        private var topicAt = 0
        private var topicLength = 0

        private fun need(n: Int) {
            if (n < 0 || bytes.size - at < n) throw IllegalStateException("a native result ends early: $n bytes wanted at $at of ${bytes.size}")
        }

        fun byte(): Int {
            need(1)
            return bytes[at++].toInt()
        }

        fun int(): Int {
            need(4)
            val b = bytes
            val i = at
            at += 4
            return (b[i].toInt() and 0xff shl 24) or (b[i + 1].toInt() and 0xff shl 16) or
                (b[i + 2].toInt() and 0xff shl 8) or (b[i + 3].toInt() and 0xff)
        }

        fun long(): Long = (int().toLong() shl 32) or (int().toLong() and 0xffffffffL)

        /** A sequence's length: each element takes a byte at least, so no more than are left. */
        fun count(): Int {
            val n = int()
            if (n < 0 || n > bytes.size - at) throw IllegalStateException("a native result has a sequence of $n at $at of ${bytes.size}")
            return n
        }

        fun string(): String {
            val length = int()
            need(length)
            return String(bytes, at, length, Charsets.UTF_8).also { at += length }
        }

        fun optString(): String? = if (byte() == 0) null else string()

        fun optInt(): Int? = if (byte() == 0) null else int()

        fun optLong(): Long? = if (byte() == 0) null else long()

        fun byteArray(): ByteArray {
            val length = int()
            need(length)
            return bytes.copyOfRange(at, at + length).also { at += length }
        }

        /** A topic: the last one again when its bytes are the same. */
        fun topic(): String {
            val length = int()
            need(length)
            val last = topic
            val start = at
            at += length
            if (last != null && length == topicLength &&
                Arrays.equals(bytes, start, start + length, bytes, topicAt, topicAt + length)
            ) {
                return last
            }
            return String(bytes, start, length, Charsets.UTF_8).also {
                topic = it
                topicAt = start
                topicLength = length
            }
        }

        fun sendResult() = SendResult(string(), optInt(), optLong(), optString())

        fun strings(): List<String> {
            val n = count()
            return if (n == 0) emptyList() else List(n) { string() }
        }

        fun properties(): Map<String, String> {
            val n = count()
            if (n == 0) return emptyMap()
            return buildMap(n) { repeat(n) { put(string(), string()) } }
        }

        /** The state's name, as `MessageState.of` reads it (without making a string). */
        fun state(): MessageState {
            val length = int()
            need(length)
            val start = at
            at += length
            return when {
                matches(start, length, SCHEDULED) -> MessageState.SCHEDULED
                matches(start, length, HALF) -> MessageState.HALF
                else -> MessageState.STORED
            }
        }

        private fun matches(start: Int, length: Int, name: ByteArray) =
            length == name.size && Arrays.equals(bytes, start, start + length, name, 0, length)

        fun delivered(settler: Settler?): Message {
            // In the order of the record's fields: evaluated left to right.
            val id = long()
            return Message(
                msgId = string(),
                topic = topic(),
                queueId = optInt(),
                queueOffset = optLong(),
                commitOffset = optLong(),
                body = byteArray(),
                tag = optString(),
                keys = strings(),
                properties = properties(),
                bornTs = long(),
                storeTs = long(),
                reconsumeTimes = int(),
                receipt = optString(),
                state = state(),
                settler = settler,
                deliveryId = id,
            )
        }

        fun end() = check(at == bytes.size) { "${bytes.size - at} bytes left over in a native result" }
    }

    private val SCHEDULED = "scheduled".encodeToByteArray()
    private val HALF = "half".encodeToByteArray()
}
