package dev.ferrymq

import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertArrayEquals
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

class PublishConsumeTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a sent message comes back with every attribute`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("orders")
            val sent = client.producer().send(
                topic, "order 42".bytes(), tag = "paid", keys = listOf("order-42"),
                properties = mapOf("region" to "eu"),
            )
            assertEquals(0L, sent.queueOffset)
            assertNull(sent.transactionId)
            val consumer = client.simpleConsumer(unique("billing"), topic)
            val (m) = consumer.receive(waitMs = 5_000)
            assertEquals(sent.msgId, m.msgId)
            assertEquals("order 42", m.text)
            assertEquals("paid", m.tag)
            assertEquals(listOf("order-42"), m.keys)
            assertEquals(mapOf("region" to "eu"), m.properties)
            assertEquals(MessageState.STORED, m.state)
            assertNotNull(m.receipt)
            m.ack()
            assertTrue(consumer.receive(waitMs = 0).isEmpty())
            assertEquals(listOf(sent.msgId), client.admin().findMessages(topic, key = "order-42").map { it.msgId })
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a batch is consumed as a flow`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("batch")
            val results = client.producer().sendBatch(topic, (0 until 5).map { OutgoingMessage("m$it") })
            assertEquals(5, results.map { it.msgId }.toSet().size)
            val consumer = client.pushConsumer(unique("flow"), topic)
            // Ack inside the collection: when it ends, the consumer closes and returns
            // whatever is unanswered to the group.
            val got = consumer.messages().onEach { it.ack() }.take(5).toList()
            assertEquals(results.map { it.msgId }.toSet(), got.map { it.msgId }.toSet())
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a binary body is kept byte for byte`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("binary")
            val body = byteArrayOf(0, -1, -2, 3)
            val sent = client.producer().send(topic, body)
            val m = client.admin().message(sent.msgId)
            assertArrayEquals(body, m.body)
            assertNull(m.text)
            assertEquals("AP/+Aw==", m.bodyBase64)
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a listener consumes what is published`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("listened")
            client.admin().createTopic(topic, queues = 2)
            val seen = java.util.concurrent.ConcurrentHashMap.newKeySet<String>()
            val consumer = client.pushConsumer(unique("g"), topic, listener = { seen += it.text!! })
            consumer.start()
            val producer = client.producer()
            repeat(10) { producer.send(topic, "n$it".bytes()) }
            eventually("every message seen by the listener") { seen.size == 10 }
            consumer.shutdown()
            assertEquals((0 until 10).map { "n$it" }.toSet(), seen)
        }
    }
}
