package dev.ferrymq

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.atomic.AtomicInteger
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertNotNull
import org.junit.jupiter.api.Assertions.assertNull
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

/** Delay, retry and transactions, on a broker whose timers are set fast ([FAST]). */
class FastTimersTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `delayed messages are scheduled, then delivered with their id`(backend: Backend) = coTest {
        withClient(backend, FAST) { client ->
            val topic = unique("delayed")
            val producer = client.producer()
            val later = producer.send(topic, "in a minute".bytes(), delayMs = 60_000)
            assertNull(later.queueOffset)
            assertEquals(MessageState.SCHEDULED, client.admin().message(later.msgId).state)
            val soon = producer.send(topic, "soon".bytes(), delayLevel = 2)
            assertNull(soon.queueId)
            val consumer = client.simpleConsumer(unique("g"), topic)
            val (m) = receiveAll(consumer, 1)
            assertEquals(soon.msgId, m.msgId)
            assertEquals("soon", m.text)
            assertTrue(consumer.receive(waitMs = 300).isEmpty())
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `a failing message is retried, then dead-lettered, then resent`(backend: Backend) = coTest {
        withClient(backend, FAST) { client ->
            val topic = unique("failing")
            val group = unique("retrier")
            client.admin().putGroup(group, maxReconsumeTimes = 2)
            val attempts = ConcurrentHashMap<Int, AtomicInteger>()
            val consumer = client.pushConsumer(group, topic, listener = { m ->
                attempts.computeIfAbsent(m.reconsumeTimes) { AtomicInteger() }.incrementAndGet()
                if (m.text == "poison") throw IllegalStateException("cannot handle ${m.msgId}")
            })
            client.admin().createTopic(topic, queues = 2)
            consumer.start()
            val sent = client.producer().send(topic, "poison".bytes())
            eventually("the message reaches the DLQ") { client.admin().dlq(group).any { it.msgId == sent.msgId } }
            consumer.shutdown()
            // Delivered max_reconsume_times + 1 times: reconsume_times 0, 1 and 2.
            assertEquals(setOf(0, 1, 2), attempts.keys)
            val dead = client.admin().dlq(group).single { it.msgId == sent.msgId }
            assertEquals(topic, dead.topic)

            val resent = client.admin().resendDlq(group, sent.msgId)
            assertEquals(sent.msgId, resent.msgId)
            val reader = client.simpleConsumer(group, topic)
            val back = receiveAll(reader, 1).single()
            assertEquals(sent.msgId, back.msgId)
            assertEquals(0, back.reconsumeTimes)
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `transactions commit, roll back, or are settled by the check-back`(backend: Backend) = coTest {
        withClient(backend, FAST) { client ->
            val topic = unique("tx")
            val checked = ConcurrentHashMap.newKeySet<String>()
            val producer = client.transactionProducer(unique("txgroup")) { half ->
                assertEquals(MessageState.HALF, half.state)
                checked += half.msgId
                Verdict.COMMIT
            }
            producer.use {
                val committed = it.sendInTransaction(topic, "commit".bytes(), localTransaction = { Verdict.COMMIT })
                assertNotNull(committed.transactionId)
                val rolledBack = it.sendInTransaction(topic, "rollback".bytes(), localTransaction = { Verdict.ROLLBACK })
                val unknown = it.sendInTransaction(topic, "unknown".bytes(), localTransaction = { Verdict.UNKNOWN })
                val throwing = it.sendInTransaction(topic, "throws".bytes(), localTransaction = { error("db down") })
                val consumer = client.simpleConsumer(unique("g"), topic)
                val got = receiveAll(consumer, 3).map { m -> m.msgId }
                assertEquals(setOf(committed.msgId, unknown.msgId, throwing.msgId), got.toSet())
                assertTrue(checked.containsAll(listOf(unknown.msgId, throwing.msgId)))
                assertTrue(rolledBack.msgId !in got)
                assertTrue(consumer.receive(waitMs = 300).isEmpty())
            }
        }
    }
}
