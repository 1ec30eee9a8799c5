package dev.ferrymq

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicInteger
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.Test

/** A listener runs on the consumer's own threads, which take messages in batches from the
 * native library: as many calls run at once as there are workers, a failed call is
 * redelivered, and closing waits for calls in progress, whose answers count. */
class ListenerThreadsTest {
    @Test
    fun `as many listener calls run at once as there are workers`() = coTest {
        withClient(Backend.EMBEDDED) { client ->
            val topic = unique("parallel")
            client.admin().createTopic(topic, queues = 4)
            val workers = 4
            val together = CountDownLatch(workers)
            val started = AtomicInteger()
            val allMet = AtomicInteger()
            val seen = ConcurrentHashMap.newKeySet<String>()
            val consumer = client.pushConsumer(unique("g"), topic, consumeWorkers = workers, listener = { m ->
                val index = started.getAndIncrement()
                together.countDown()
                // The first `workers` calls return only once they all run together (or, if
                // fewer could run at once, after the wait gives up, and they do not count).
                if (together.await(30, TimeUnit.SECONDS) && index < workers) allMet.incrementAndGet()
                seen += m.msgId
            })
            val sent = client.producer().sendBatch(topic, List(12) { OutgoingMessage("m$it") }).map { it.msgId }.toSet()
            consumer.start()
            eventually("every message consumed") { seen == sent }
            assertEquals(workers, allMet.get(), "first calls that ran together")
            consumer.shutdown()
        }
    }

    @Test
    fun `a failed call is redelivered and closing waits for the call in progress`() = coTest {
        withClient(Backend.EMBEDDED, FAST) { client ->
            val topic = unique("slow")
            client.admin().createTopic(topic, queues = 1)
            val group = unique("g")
            val calls = ConcurrentHashMap<String, AtomicInteger>()
            val inside = CountDownLatch(1)
            val consumed = ConcurrentHashMap.newKeySet<String>()
            val consumer = client.pushConsumer(group, topic, listener = { m ->
                val call = calls.computeIfAbsent(m.text!!) { AtomicInteger() }.incrementAndGet()
                if (m.text == "fails once" && call == 1) throw IllegalStateException("first time")
                if (m.text == "slow") {
                    inside.countDown()
                    Thread.sleep(300)
                }
                consumed += m.text!!
            })
            client.producer().send(topic, "fails once".bytes())
            consumer.start()
            eventually("the failed message came back and was consumed") { "fails once" in consumed }
            assertEquals(2, calls["fails once"]!!.get())
            client.producer().send(topic, "slow".bytes())
            assertTrue(inside.await(30, TimeUnit.SECONDS))
            consumer.shutdown()
            // The call in progress finished before the consumer left, and its ack counted.
            assertTrue("slow" in consumed)
            val offsets = client.admin().group(group).offsets.filter { it.topic == topic }
            assertEquals(0L, offsets.sumOf { it.lag }, "lag after close: $offsets")
        }
    }
}
