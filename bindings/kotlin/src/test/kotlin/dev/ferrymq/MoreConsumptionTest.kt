package dev.ferrymq

import java.io.File
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

class MoreConsumptionTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a simple consumer extends a lease, nacks, and gets the message back`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("leased")
            client.producer().sendOneway(topic, OutgoingMessage("one way"))
            val consumer = client.simpleConsumer(unique("g"), topic)
            val first = mutableListOf<Message>()
            eventually("the one-way message arrives") {
                // A one-way send returns before the message (and its new topic) is stored.
                first += try {
                    consumer.receive(waitMs = 200)
                } catch (e: FerryException.NotFound) {
                    emptyList()
                }
                first.isNotEmpty()
            }
            val m = first.single()
            assertEquals("one way", m.text)
            assertEquals(0, m.reconsumeTimes)
            val oldReceipt = m.receipt
            consumer.changeInvisibleDuration(m, 60_000)
            assertNotEquals(oldReceipt, m.receipt)
            m.nack(delayMs = 100)
            val again = receiveAll(consumer, 1).single()
            assertEquals(m.msgId, again.msgId)
            assertEquals(1, again.reconsumeTimes)
            assertThrows<FerryException.Conflict> { kotlinx.coroutines.runBlocking { consumer.ack(again) } }
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `broadcasting members each get every message`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("broadcast")
            client.admin().createTopic(topic, queues = 2)
            val group = unique("all")
            val seen = List(2) { java.util.concurrent.ConcurrentHashMap.newKeySet<String>() }
            val members = seen.map { set ->
                client.pushConsumer(group, topic, mode = ConsumeMode.BROADCASTING, listener = { set += it.msgId })
            }
            members.forEach { it.start() }
            val sent = (0 until 6).map { client.producer().send(topic, "b$it".bytes()).msgId }.toSet()
            eventually("both members saw every message") { seen.all { it == sent } }
            members.forEach { it.shutdown() }
        }
    }

    @Test
    fun `a server with an auth_file wants a token with the grant`() = coTest {
        val auth = File.createTempFile("auth", ".toml").apply {
            writeText(
                """
                [[tokens]]
                token = "admin-secret"
                topics = ["*"]
                groups = ["*"]
                actions = ["publish", "consume", "admin"]

                [[tokens]]
                token = "reader-secret"
                topics = ["public-*"]
                groups = ["*"]
                actions = ["consume"]
                """.trimIndent(),
            )
        }
        try {
            authorizedServer(auth)
        } finally {
            auth.delete()
        }
    }

    private suspend fun authorizedServer(auth: File) {
        Server(mapOf("auth_file" to auth.path)).use { server ->
            val missing = assertThrows<FerryException.Unauthorized> {
                Client.connectBlocking(server.url).use { it.producer().sendBlocking("public-news", "x".bytes()) }
            }
            assertEquals("urn:ferrymq:error:unauthorized", missing.type)
            Client.connect(server.url, token = "admin-secret").use { it.producer().send("public-news", "hello".bytes()) }
            Client.connect(server.url, token = "reader-secret").use { reader ->
                val got = receiveAll(reader.simpleConsumer("readers", "public-news"), 1)
                assertEquals("hello", got.single().text)
                val forbidden = assertThrows<FerryException.Forbidden> {
                    reader.producer().sendBlocking("public-news", "not allowed".bytes())
                }
                assertTrue(!forbidden.retriable)
            }
        }
    }
}
