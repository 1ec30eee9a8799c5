package dev.ferrymq

import com.sun.jna.CallbackThreadInitializer
import com.sun.jna.Native
import dev.ferrymq.ffi.uniffiRustFutureContinuationCallbackImpl
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.yield
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

/** The JNI fast path (sends, taking, settling, acking) through the public API: every message
 * arrives once with its attributes, failures are the typed exceptions, a cancelled call gives
 * its messages back, and a panic is an exception. */
class FastPathTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `every way of sending arrives once, with its attributes, in a flow and at a listener`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("fast")
            client.admin().createTopic(topic, queues = 4)
            val producer = client.producer()
            fun attrs(i: Int) = OutgoingMessage(
                "m$i".bytes(), tag = "t${i % 3}", keys = listOf("k$i"), properties = mapOf("i" to "$i"),
                shardingKey = if (i % 2 == 0) "even" else null,
            )
            val sent = mutableListOf<Pair<String, Int>>()
            for (i in 0 until 20) {
                val m = attrs(i)
                sent += producer.send(topic, m.body, m.tag, m.keys, m.properties, shardingKey = m.shardingKey).msgId to i
            }
            for (i in 20 until 40) {
                val m = attrs(i)
                sent += producer.sendBlocking(topic, m.body, m.tag, m.keys, m.properties, shardingKey = m.shardingKey).msgId to i
            }
            sent += producer.sendBatch(topic, (40 until 70).map(::attrs)).map { it.msgId }.zip(40 until 70)
            sent += producer.sendBatchBlocking(topic, (70 until 100).map(::attrs)).map { it.msgId }.zip(70 until 100)
            sent += (100 until 132).map { i -> async { producer.send(topic, attrs(i).body, attrs(i).tag, attrs(i).keys, attrs(i).properties) } }
                .awaitAll().map { it.msgId }.zip(100 until 132)
            val expected = sent.toMap()
            assertEquals(132, expected.size, "distinct message ids")

            // A flow, acking each: every message once, as sent.
            val flowed = client.pushConsumer(unique("flow"), topic).messages().take(expected.size).onEach { it.ack() }.toList()
            for (m in flowed) {
                val i = expected.getValue(m.msgId)
                assertEquals("m$i", m.text)
                assertEquals("t${i % 3}", m.tag)
                assertEquals(listOf("k$i"), m.keys)
                assertEquals(mapOf("i" to "$i"), m.properties.filterKeys { it == "i" })
            }
            assertEquals(expected.keys, flowed.map { it.msgId }.toSet())
            assertEquals(expected.size, flowed.size)

            // A listener of another group: every message once, none left behind.
            val group = unique("listen")
            val calls = ConcurrentHashMap<String, Int>()
            val all = CountDownLatch(expected.size)
            val listening = client.pushConsumer(group, topic, consumeWorkers = 4, listener = { m ->
                calls.merge(m.msgId, 1, Int::plus)
                all.countDown()
            })
            listening.start()
            assertTrue(all.await(60, TimeUnit.SECONDS), "every message reached the listener")
            listening.shutdown()
            assertEquals(expected.keys, calls.keys)
            assertTrue(calls.values.all { it == 1 }, "no message twice: $calls")
            val lag = client.admin().group(group).offsets.filter { it.topic == topic }.sumOf { it.lag }
            assertEquals(0L, lag, "every listener call was acked")
        }
    }

    @Test
    fun `fast path failures are the typed exceptions`() = coTest {
        withClient(Backend.EMBEDDED) { client ->
            val producer = client.producer()
            assertThrows<FerryException.InvalidArgument> { producer.sendBlocking("bad topic!", "x".bytes()) }
            val twoDelays = assertThrows<FerryException.InvalidArgument> {
                runBlocking { producer.sendBatch(unique("t"), listOf(OutgoingMessage("x".bytes(), delayLevel = 1, deliverAt = 5))) }
            }
            assertEquals("/delay", twoDelays.field)
            assertThrows<FerryException.InvalidArgument> {
                producer.sendBatchBlocking(unique("t"), listOf(OutgoingMessage("x".bytes(), delayMs = -1)))
            }
            val readOnly = unique("ro")
            client.admin().createTopic(readOnly, perm = Perm.READ)
            assertThrows<FerryException.Forbidden> { runBlocking { producer.sendBatch(readOnly, listOf(OutgoingMessage("x"))) } }

            val topic = unique("t")
            producer.send(topic, "one".bytes())
            val consumer = client.pushConsumer(unique("g"), topic)
            consumer.start()
            val badTimeout = assertThrows<FerryException.InvalidArgument> { runBlocking { consumer.receive(timeoutMs = -1) } }
            assertEquals("/timeout_ms", badTimeout.field)
            val m = consumer.receive(timeoutMs = 30_000)!!
            val badDelay = assertThrows<FerryException.InvalidArgument> { runBlocking { m.nack(delayMs = -5) } }
            assertEquals("/delay_ms", badDelay.field)
            m.ack()
            assertThrows<FerryException.Conflict> { runBlocking { m.ack() } }
            assertThrows<FerryException.Conflict> { runBlocking { m.nack() } }
            consumer.shutdown()
        }
    }

    @Test
    fun `a cancelled receive takes nothing, and the next one gets the message`() = coTest {
        withClient(Backend.EMBEDDED) { client ->
            val topic = unique("cancel")
            client.admin().createTopic(topic, queues = 1)
            val consumer = client.pushConsumer(unique("g"), topic)
            consumer.start()
            val waiting = launch { consumer.receive() }
            yield()
            waiting.cancel()
            waiting.join()
            val sent = client.producer().send(topic, "after".bytes()).msgId
            val m = consumer.receive(timeoutMs = 30_000)
            assertEquals(sent, m?.msgId)
            m!!.ack()
            assertNull(consumer.receive(timeoutMs = 1))
            consumer.shutdown()
        }
    }

    @Test
    fun `a runtime thread that JNA detached behind the fast path's back is attached again`() = coTest {
        // After a callback, JNA detaches a thread it once attached for a callback without a
        // keep-attached initializer, even if the fast path attached it again since. For a
        // while, uniffi's completion callback is such a one, and its asynchronous calls take
        // turns with the fast path's on the runtime's threads.
        NativeThreads.ensure()
        Native.setCallbackThreadInitializer(uniffiRustFutureContinuationCallbackImpl, CallbackThreadInitializer(true, true, "ferrymq-detaching"))
        try {
            withClient(Backend.EMBEDDED) { client ->
                val topic = unique("detached")
                val admin = client.admin()
                admin.createTopic(topic, queues = 1)
                val producer = client.producer()
                for (i in 0 until 200) {
                    assertEquals(topic, admin.topic(topic).topic.name)
                    assertEquals(i.toLong(), producer.send(topic, "m$i".bytes()).queueOffset)
                }
            }
        } finally {
            NativeThreads.install()
        }
    }

    @Test
    fun `a panic on the fast path is an exception and the JVM lives on`() {
        FastPath.ensure()
        val sync = assertThrows<FerryException.Internal> { native { FastPath.panicForTests("fast sync boom", 0) } }
        assertTrue(sync.detail.contains("fast sync boom"), sync.detail)
        val async = assertThrows<FerryException.Internal> {
            runBlocking { native { FastPath.call { token -> FastPath.panicForTests("fast async boom", token) } } }
        }
        assertTrue(async.detail.contains("fast async boom"), async.detail)
        withTempDir { dir ->
            Client.embeddedBlocking(dir.path, SMALL).use { client ->
                assertEquals(0L, client.producer().sendBlocking(unique("alive"), "x".bytes()).queueOffset)
            }
        }
    }
}
