package dev.ferrymq

import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Assertions.assertTrue
import org.junit.jupiter.params.ParameterizedTest
import org.junit.jupiter.params.provider.EnumSource

class FilterReplayTest {
    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `tag and SQL filters apply broker-side`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("filtered")
            val producer = client.producer()
            for ((i, tag) in listOf("a", "b", "c", "a").withIndex()) {
                producer.send(topic, "$tag$i".bytes(), tag = tag, properties = mapOf("n" to "$i", "region" to if (i % 2 == 0) "eu" else "us"))
            }
            val tagged = receiveAll(client.simpleConsumer(unique("tags"), topic, filter = "a || b"), 3)
            assertEquals(setOf("a0", "b1", "a3"), tagged.map { it.text }.toSet())
            assertEquals(setOf("a", "b"), tagged.map { it.tag }.toSet())
            val sql = client.simpleConsumer(unique("sql"), topic, sql = "region = 'eu' AND n > 1")
            val matched = receiveAll(sql, 1)
            assertEquals(listOf("c2"), matched.map { it.text })
            assertTrue(sql.receive(waitMs = 200).isEmpty())
        }
    }

    @ParameterizedTest
    @EnumSource(Backend::class)
    fun `reset offsets replays from the earliest or a timestamp`(backend: Backend) = coTest {
        withClient(backend) { client ->
            val topic = unique("replay")
            client.admin().createTopic(topic, queues = 1)
            val producer = client.producer()
            val sent = (0 until 5).map { producer.send(topic, "r$it".bytes()).msgId }
            val group = unique("replayer")
            val consumer = client.simpleConsumer(group, topic)
            assertEquals(sent, receiveAll(consumer, 5).map { it.msgId })
            assertTrue(consumer.receive(waitMs = 100).isEmpty())

            client.admin().resetOffsets(group, topic, to = ResetTo.EARLIEST)
            assertEquals(sent, receiveAll(consumer, 5).map { it.msgId })

            val third = client.admin().message(sent[2])
            val offsets = client.admin().resetOffsets(group, topic, timestamp = third.storeTs)
            assertTrue(offsets.single().offset <= 2)
            val replayed = receiveAll(consumer, 5 - offsets.single().offset.toInt()).map { it.msgId }
            assertEquals(sent.drop(offsets.single().offset.toInt()), replayed)
            assertTrue(replayed.containsAll(sent.drop(2)))
        }
    }
}
