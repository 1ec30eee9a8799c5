package dev.ferrymq

import dev.ferrymq.ffi.FfiConverterSequenceTypeFfiDelivered
import dev.ferrymq.ffi.FfiConverterSequenceTypeFfiOutgoing
import dev.ferrymq.ffi.FfiConverterSequenceTypeFfiSendResult
import dev.ferrymq.ffi.FfiConverterTypeFfiOutgoing
import dev.ferrymq.ffi.FfiConverterTypeFfiSendResult
import dev.ferrymq.ffi.FfiDelivered
import dev.ferrymq.ffi.FfiMessage
import dev.ferrymq.ffi.FfiSendResult
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertSame
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows

/** [Wire] writes and reads the very bytes of uniffi's generated converters, field for field. */
class WireTest {
    private val NO_BODY = ByteArray(0)

    private fun outgoing(i: Int) = when (i % 4) {
        0 -> OutgoingMessage("plain $i".bytes())
        1 -> OutgoingMessage(
            ByteArray(i) { it.toByte() }, tag = "tag-é", keys = listOf("k$i", "ключ"),
            properties = mapOf("a" to "1", "b" to "двa"), delayLevel = 3, shardingKey = "s", idempotencyKey = "id-$i",
        )
        2 -> OutgoingMessage(ByteArray(0), delayMs = 1_500L)
        else -> OutgoingMessage("😀".bytes(), deliverAt = 1_700_000_000_000L, keys = listOf(""))
    }

    @Test
    fun `outgoing messages are written as the generated converters write them`() {
        for (i in 0 until 8) {
            val message = outgoing(i)
            assertArrayEquals(FastPath.encode(FfiConverterTypeFfiOutgoing, message.toFfi()), Wire.outgoing(message), "message $i")
        }
        val batch = (0 until 9).map(::outgoing)
        assertArrayEquals(FastPath.encode(FfiConverterSequenceTypeFfiOutgoing, batch.map { it.toFfi() }), Wire.outgoings(batch))
        assertArrayEquals(FastPath.encode(FfiConverterSequenceTypeFfiOutgoing, emptyList()), Wire.outgoings(emptyList()))
    }

    @Test
    fun `send results are read as the generated converters read them`() {
        val results = listOf(
            FfiSendResult("id-1", 3, 42L, null),
            FfiSendResult("id-2", null, null, "tx-ü"),
            FfiSendResult("", 0, 0L, ""),
        )
        for (r in results) assertEquals(r.toSdk(), Wire.sendResult(FastPath.encode(FfiConverterTypeFfiSendResult, r)))
        assertEquals(results.map { it.toSdk() }, Wire.sendResults(FastPath.encode(FfiConverterSequenceTypeFfiSendResult, results)))
    }

    private fun ffiMessage(i: Int, topic: String, state: String) = FfiMessage(
        msgId = "msg-$i", topic = topic, queueId = if (i % 2 == 0) i else null, queueOffset = if (i % 3 == 0) null else i * 10L,
        commitOffset = if (i == 1) null else 1L shl 40, body = ByteArray(i * 7) { (it + i).toByte() },
        tag = if (i % 2 == 1) "t$i" else null, keys = List(i % 3) { "k$it-ключ" },
        properties = (0 until i % 4).associate { "p$it" to "v$it" }, bornTs = 1_700_000_000_000L + i, storeTs = i.toLong(),
        reconsumeTimes = i, receipt = if (i == 2) "receipt" else null, state = state,
    )

    @Test
    fun `delivered messages are read as the generated converters read them`() {
        val topics = listOf("orders", "orders", "%RETRY%g", "orders", "заказы", "orders")
        val states = listOf("stored", "scheduled", "half", "stored", "stored", "unknown")
        val delivered = topics.indices.map { i -> FfiDelivered(100L + i, ffiMessage(i, topics[i], states[i])) }
        val settler = object : Settler {
            override suspend fun ack(message: Message) = Unit
            override suspend fun nack(message: Message, delayMs: Long?) = Unit
        }
        val read = Wire.delivered(FastPath.encode(FfiConverterSequenceTypeFfiDelivered, delivered), settler)
        assertEquals(delivered.size, read.size)
        for ((expected, actual) in delivered.zip(read)) {
            val want = Message(expected.message, settler, expected.id)
            assertEquals(expected.id, actual.deliveryId)
            // (FfiMessage compares its body by identity: the bodies are compared on their own.)
            assertEquals(want.toFfi().copy(body = NO_BODY), actual.toFfi().copy(body = NO_BODY))
            assertArrayEquals(want.body, actual.body)
            assertEquals(want.state, actual.state)
            assertEquals(want.text, actual.text)
        }
        assertEquals(MessageState.SCHEDULED, read[1].state)
        assertEquals(MessageState.HALF, read[2].state)
        assertEquals(MessageState.STORED, read[5].state)
        // A topic repeated in a batch is decoded once.
        assertSame(read[0].topic, read[1].topic)
        assertEquals(emptyList<Message>(), Wire.delivered(FastPath.encode(FfiConverterSequenceTypeFfiDelivered, emptyList()), null))
    }

    @Test
    fun `a short, long or malformed native result is an error`() {
        val bytes = FastPath.encode(FfiConverterSequenceTypeFfiSendResult, listOf(FfiSendResult("id", 1, 2L, null)))
        assertThrows<IllegalStateException> { Wire.sendResults(bytes.copyOf(bytes.size - 1)) }
        assertThrows<IllegalStateException> { Wire.sendResults(bytes + 0.toByte()) }
        assertThrows<IllegalStateException> { Wire.sendResults(byteArrayOf(0x7f, 0, 0, 0)) }
        assertThrows<IllegalStateException> { Wire.delivered(byteArrayOf(-1, -1, -1, -1), null) }
    }

    @Test
    fun `a message's text is decoded once, and null for a body that is not UTF-8`() {
        val message = Message(ffiMessage(3, "t", "stored"))
        assertSame(message.text, message.text)
        assertNull(Message(FfiMessage("m", "t", null, null, null, byteArrayOf(-1, -2), null, emptyList(), emptyMap(), 0, 0, 0, null, "stored")).text)
    }
}
