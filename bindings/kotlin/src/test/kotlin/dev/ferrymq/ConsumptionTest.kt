package dev.ferrymq

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import kotlinx.coroutines.CompletableDeferred
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.cancelAndJoin
import kotlinx.coroutines.flow.collect
import kotlinx.coroutines.flow.onEach
import kotlinx.coroutines.flow.take
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.flow.transformWhile
import kotlinx.coroutines.launch
import kotlinx.coroutines.withTimeout
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.api.assertThrows
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

class ConsumptionTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `an orderly consumer sees each sharding key in order`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("ordered")
            client.admin().createTopic(topic, queues = 4)
            val producer = client.producer()
            val keys = listOf("alice", "bob", "carol")
            for (i in 0 until 10) for (k in keys) producer.send(topic, "$k:$i".bytes(), shardingKey = k)
            val consumer = client.pushConsumer(unique("orderly"), topic, orderly = true)
            val got = consumer.messages().onEach { it.ack() }.take(30).toList()
            for (k in keys) {
                assertEquals((0 until 10).map { "$k:$it" }, got.map { it.text!! }.filter { it.startsWith("$k:") })
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `three consumers of one group share the queues with nothing lost or doubled`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("shared")
            client.admin().createTopic(topic, queues = 8)
            val group = unique("trio")
            val seen = ConcurrentHashMap<String, AtomicInteger>()
            val consumers = (0 until 3).map {
                client.pushConsumer(group, topic, listener = { m -> seen.computeIfAbsent(m.msgId) { AtomicInteger() }.incrementAndGet() })
            }
            consumers.forEach { it.start() }
            // Steady state: the three shares are disjoint and cover the topic's queues.
            eventually("the three members split the eight queues") {
                val shares = consumers.map { c -> c.assignment().filter { it.topic == topic }.map { it.queueId } }
                shares.all { it.isNotEmpty() } && shares.flatten().sorted() == (0 until 8).toList()
            }
            val producer = client.producer()
            val sent = (0 until 90).map { producer.send(topic, "m$it".bytes()).msgId }
            eventually("every message consumed") { seen.keys.containsAll(sent) }
            // Everything consumed is committed while the three are still members.
            eventually("the group's lag drops to zero") {
                client.admin().group(group).offsets.filter { it.topic == topic }.sumOf { it.lag } == 0L
            }
            val doubled = seen.filterValues { it.get() != 1 }.mapValues { it.value.get() }
            consumers.forEach { it.shutdown() }
            assertEquals(sent.toSet(), seen.keys)
            assertEquals(emptyMap<String, Int>(), doubled)
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `cancelling a collecting coroutine stops consumption and returns the unacked messages`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("cancelled")
            client.admin().createTopic(topic, queues = 1)
            val producer = client.producer()
            val sent = (0 until 6).map { producer.send(topic, "c$it".bytes()).msgId }
            val group = unique("canceller")
            val held = mutableListOf<Message>()
            val allSeen = CompletableDeferred<Unit>()
            val job = launch(Dispatchers.Default) {
                var n = 0
                // Concurrent consumption hands a queue's messages out in any order: ack the
                // first two of the queue, hold the other four.
                client.pushConsumer(group, topic).messages().collect { m ->
                    if (m.msgId in sent.take(2)) m.ack() else synchronized(held) { held += m }
                    if (++n == 6) allSeen.complete(Unit)
                }
            }
            allSeen.await()
            job.cancelAndJoin()

            // The consumer stopped: it left the group, and what it held can no longer be acked.
            assertTrue(client.admin().group(group).members.isEmpty())
            assertEquals(sent.drop(2).toSet(), held.map { it.msgId }.toSet())
            for (m in held) assertThrows<FerryException.Conflict> { kotlinx.coroutines.runBlocking { m.ack() } }

            // The unacked messages went back to the group: the next member gets exactly them.
            val next = client.pushConsumer(group, topic)
            val again = next.messages().onEach { it.ack() }.take(4).toList()
            assertEquals(sent.drop(2).toSet(), again.map { it.msgId }.toSet())
            assertEquals(0L, client.admin().group(group).offsets.filter { it.topic == topic }.sumOf { it.lag })
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `messages taken in a batch and not yet emitted go back when the collection ends`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("buffered")
            client.admin().createTopic(topic, queues = 1)
            val sent = client.producer().sendBatch(topic, List(40) { OutgoingMessage("b$it") }).map { it.msgId }
            val group = unique("buffering")
            // A pulled batch crosses in one call: the flow emits one message and ends with the
            // others taken into its buffer (and more queued in the library) but never emitted.
            val first = client.pushConsumer(group, topic).messages().onEach { it.ack() }.take(1).toList()
            assertEquals(1, first.size)
            assertTrue(client.admin().group(group).members.isEmpty())

            // They went back uncommitted, without counting a reconsume: the next member gets
            // the rest, once each. Concurrent consumption hands a batch out in any order, so
            // the acked message may lie above offsets that went back; the committed offset
            // cannot pass those, and the next member may read it once more (at least once).
            val firstId = first.single().msgId
            val rest = sent.toSet() - firstId
            val seen = HashSet<String>()
            val again = withTimeout(30_000) {
                client.pushConsumer(group, topic).messages().onEach { it.ack() }
                    .transformWhile { m -> emit(m); seen += m.msgId; !seen.containsAll(rest) }.toList()
            }
            val others = again.filter { it.msgId != firstId }
            assertEquals(rest, others.map { it.msgId }.toSet())
            assertEquals(39, others.size, "each of the rest once")
            assertTrue(again.count { it.msgId == firstId } <= 1, "the acked one at most once more")
            assertTrue(again.all { it.reconsumeTimes == 0 }, "reconsume counts: ${again.map { it.reconsumeTimes }}")
            assertEquals(0L, client.admin().group(group).offsets.filter { it.topic == topic }.sumOf { it.lag })
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a flow's acks all count when the collection ends, and a second answer is a conflict`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("acked")
            client.admin().createTopic(topic, queues = 2)
            val sent = client.producer().sendBatch(topic, List(30) { OutgoingMessage("a$it") }).map { it.msgId }
            val group = unique("acker")
            val got = client.pushConsumer(group, topic).messages().onEach { m ->
                m.ack()
                val again = runCatching { m.ack() }.exceptionOrNull()
                assertTrue(again is FerryException.Conflict, "second ack: $again")
                val nacked = runCatching { m.nack() }.exceptionOrNull()
                assertTrue(nacked is FerryException.Conflict, "nack after ack: $nacked")
            }.take(30).toList()
            assertEquals(sent.toSet(), got.map { it.msgId }.toSet())

            // Acks sent many per call, the last of them as the flow ended: every one committed.
            assertEquals(0L, client.admin().group(group).offsets.filter { it.topic == topic }.sumOf { it.lag })
            val next = client.pushConsumer(group, topic)
            next.start()
            assertNull(next.receive(timeoutMs = 500))
            next.shutdown()
        }
    }
}
