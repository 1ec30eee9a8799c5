package dev.ferrymq

import dev.ferrymq.ffi.FfiAdmin
import dev.ferrymq.ffi.FfiGroup
import dev.ferrymq.ffi.FfiTopic
import kotlinx.coroutines.runBlocking

/** Administration of the broker behind a [Client]: topics, groups, offsets, dead letters and
 * lookups. Each suspend call has a blocking twin for Java. */
class Admin internal constructor(private val ffi: FfiAdmin) {
    /** Creates a topic. [FerryException.Conflict] if it exists; [FerryException.InvalidArgument]
     * for a bad or reserved name. */
    suspend fun createTopic(name: String, queues: Int = 8, perm: Perm = Perm.READ_WRITE): TopicInfo =
        native { ffi.createTopic(name, queues, perm.wire) }.toSdk()

    /** [createTopic] for Java and other blocking callers. */
    @JvmOverloads
    fun createTopicBlocking(name: String, queues: Int = 8, perm: Perm = Perm.READ_WRITE): TopicInfo =
        runBlocking { createTopic(name, queues, perm) }

    /** Deletes a topic: its queues and every group's offsets on it. */
    suspend fun deleteTopic(name: String) = native { ffi.deleteTopic(name) }

    /** [deleteTopic] for Java and other blocking callers. */
    fun deleteTopicBlocking(name: String) = runBlocking { deleteTopic(name) }

    /** Every topic. */
    suspend fun topics(): List<TopicInfo> = native { ffi.topics() }.map { it.toSdk() }

    /** [topics] for Java and other blocking callers. */
    fun topicsBlocking(): List<TopicInfo> = runBlocking { topics() }

    /** One topic with the offsets of its queues. */
    suspend fun topic(name: String): TopicDetail = native { ffi.topic(name) }.let { d ->
        TopicDetail(d.topic.toSdk(), d.queueOffsets.map { QueueOffsets(it.queueId, it.min, it.max) })
    }

    /** [topic] for Java and other blocking callers. */
    fun topicBlocking(name: String): TopicDetail = runBlocking { topic(name) }

    /** A group: subscriptions, members, and committed offset, max and lag per queue. */
    suspend fun group(name: String): GroupInfo = native { ffi.group(name) }.toSdk()

    /** [group] for Java and other blocking callers. */
    fun groupBlocking(name: String): GroupInfo = runBlocking { group(name) }

    /** Creates a group, or sets how often a failing message is redelivered before the DLQ. */
    suspend fun putGroup(name: String, maxReconsumeTimes: Int? = null): GroupInfo =
        native { ffi.putGroup(name, maxReconsumeTimes) }.toSdk()

    /** [putGroup] for Java and other blocking callers. */
    @JvmOverloads
    fun putGroupBlocking(name: String, maxReconsumeTimes: Int? = null): GroupInfo =
        runBlocking { putGroup(name, maxReconsumeTimes) }

    /** Moves a group's offsets on a topic to [timestamp] (inclusive, epoch ms) or [to] the
     * earliest or latest message; give exactly one. Applies at once. */
    suspend fun resetOffsets(group: String, topic: String, timestamp: Long? = null, to: ResetTo? = null): List<QueuePosition> =
        native { ffi.resetOffsets(group, topic, timestamp, to?.wire) }.map { QueuePosition(it.queueId, it.offset) }

    /** [resetOffsets] for Java and other blocking callers. */
    @JvmOverloads
    fun resetOffsetsBlocking(group: String, topic: String, timestamp: Long? = null, to: ResetTo? = null) =
        runBlocking { resetOffsets(group, topic, timestamp, to) }

    /** The group's dead letters, oldest first. */
    suspend fun dlq(group: String): List<Message> = native { ffi.dlq(group) }.map { Message(it) }

    /** [dlq] for Java and other blocking callers. */
    fun dlqBlocking(group: String): List<Message> = runBlocking { dlq(group) }

    /** Moves a dead letter back to its topic, with the same `msgId` and `reconsumeTimes` 0. */
    suspend fun resendDlq(group: String, msgId: String): SendResult = native { ffi.resendDlq(group, msgId) }.toSdk()

    /** [resendDlq] for Java and other blocking callers. */
    fun resendDlqBlocking(group: String, msgId: String): SendResult = runBlocking { resendDlq(group, msgId) }

    /** Messages of [topic] by [key] and/or store time ([fromTs] inclusive, [toTs] exclusive),
     * oldest first, at most [limit] (default 100). */
    suspend fun findMessages(
        topic: String,
        key: String? = null,
        fromTs: Long? = null,
        toTs: Long? = null,
        limit: Int? = null,
    ): List<Message> = native { ffi.findMessages(topic, key, fromTs, toTs, limit) }.map { Message(it) }

    /** [findMessages] for Java and other blocking callers. */
    @JvmOverloads
    fun findMessagesBlocking(
        topic: String,
        key: String? = null,
        fromTs: Long? = null,
        toTs: Long? = null,
        limit: Int? = null,
    ): List<Message> = runBlocking { findMessages(topic, key, fromTs, toTs, limit) }

    /** One message by id (stored, scheduled or half). [FerryException.NotFound] if unknown. */
    suspend fun message(msgId: String): Message = Message(native { ffi.message(msgId) })

    /** [message] for Java and other blocking callers. */
    fun messageBlocking(msgId: String): Message = runBlocking { message(msgId) }
}

private fun FfiTopic.toSdk() = TopicInfo(name, queues, Perm.of(perm))

private fun FfiGroup.toSdk() = GroupInfo(
    group,
    maxReconsumeTimes,
    subscriptions.map {
        Subscription(it.topic, it.filter, it.sql, if (it.mode == "broadcasting") ConsumeMode.BROADCASTING else ConsumeMode.CLUSTERING)
    },
    members.map { MemberInfo(it.clientId, it.transport, it.since) },
    offsets.map { GroupOffset(it.topic, it.queueId, it.committed, it.max, it.lag) },
)
