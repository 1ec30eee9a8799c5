package dev.ferrymq

import dev.ferrymq.ffi.ffiPanicForTests
import dev.ferrymq.ffi.ffiPanicForTestsBlocking
import kotlinx.coroutines.runBlocking
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertFalse
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

class ErrorsTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `bad input raises the typed exceptions`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val producer = client.producer()
            val bad = assertThrows<FerryException.InvalidArgument> { runBlocking { producer.send("bad topic!", "x".bytes()) } }
            assertEquals("invalid-argument", bad.kind)
            assertEquals("urn:ferrymq:error:invalid-argument", bad.type)
            assertFalse(bad.retriable)
            val twoDelays = assertThrows<FerryException.InvalidArgument> {
                runBlocking { producer.send(unique("t"), "x".bytes(), delayLevel = 1, delayMs = 5) }
            }
            assertEquals("/delay", twoDelays.field)
            val filter = assertThrows<FerryException.InvalidArgument> { client.simpleConsumer(unique("g"), "t", sql = "a = ") }
            assertEquals("invalid-filter", filter.kind)
            val admin = client.admin()
            assertThrows<FerryException.NotFound> { runBlocking { admin.topic(unique("missing")) } }
            assertThrows<FerryException.NotFound> { runBlocking { admin.group(unique("missing")) } }
            val topic = unique("dup")
            admin.createTopic(topic)
            assertThrows<FerryException.Conflict> { runBlocking { admin.createTopic(topic) } }
            val readOnly = unique("ro")
            admin.createTopic(readOnly, perm = Perm.READ)
            assertThrows<FerryException.Forbidden> { runBlocking { producer.send(readOnly, "x".bytes()) } }
            val unsent = client.admin().message(producer.send(topic, "x".bytes()).msgId)
            assertThrows<FerryException.InvalidArgument> { runBlocking { unsent.ack() } }
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a closed client refuses every call with ConnectionError`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("t")
            val admin = client.admin()
            admin.createTopic(topic, queues = 1)
            val producer = client.producer()
            producer.send(topic, "kept".bytes())
            val consumer = client.simpleConsumer(unique("g"), topic)
            client.close()
            val calls: List<Pair<String, suspend () -> Unit>> = listOf(
                "send" to { producer.send(topic, "late".bytes()) },
                "receive" to { consumer.receive(maxMessages = 16) },
                "topics" to { admin.topics() },
                "createTopic" to { admin.createTopic(unique("t")) },
                "a new admin" to { client.admin().topics() },
            )
            for ((what, call) in calls) {
                val e = assertThrows<FerryException.ConnectionError>(what) { runBlocking { call() } }
                assertTrue(e.detail.contains("closed"), "$what: ${e.detail}")
            }
            client.close()
        }
    }

    @Test
    fun `an unreachable server is a retriable connection error`() {
        val port = java.net.ServerSocket(0).use { it.localPort }
        val e = assertThrows<FerryException.ConnectionError> { Client.connectBlocking("http://127.0.0.1:$port") }
        assertEquals("connection", e.kind)
        assertTrue(e.retriable)
    }

    @Test
    fun `a Rust panic is an exception and the JVM lives on`() {
        val async = assertThrows<FerryException.Internal> { runBlocking { native { ffiPanicForTests("async boom") } } }
        assertTrue(async.detail.contains("async boom"), async.detail)
        val sync = assertThrows<FerryException.Internal> { native { ffiPanicForTestsBlocking("sync boom") } }
        assertTrue(sync.detail.contains("sync boom"), sync.detail)
        // The library still works after both.
        withTempDir { dir ->
            Client.embeddedBlocking(dir.path, SMALL).use { client ->
                assertEquals(0L, client.producer().sendBlocking(unique("alive"), "x".bytes()).queueOffset)
            }
        }
    }

    @Test
    fun `embedded settings are the server's, and bad ones are refused naming their key`() {
        for ((key, value) in listOf("no_such_key" to "1", "auth_file" to "auth.toml", "lease_ttl" to "soon")) {
            val e = withTempDir { dir ->
                assertThrows<FerryException.InvalidArgument> { Client.embeddedBlocking(dir.path, SMALL + (key to value)) }
            }
            assertEquals("/config/$key", e.field)
        }
        withTempDir { dir ->
            Client.embeddedBlocking(dir.path, SMALL + mapOf("flush" to "sync", "max_reconsume_times" to "3")).use { client ->
                val group = unique("g")
                client.simpleConsumer(group, unique("t"))
                assertEquals(3, client.admin().putGroupBlocking(group).maxReconsumeTimes)
            }
        }
    }
}
