package dev.ferrymq

/** How a group shares a topic's messages. */
enum class ConsumeMode(internal val wire: String) {
    /** Each message goes to one member of the group. */
    CLUSTERING("clustering"),

    /** Each message goes to every member of the group. */
    BROADCASTING("broadcasting"),
}

/** How the members of a clustering group share the topic's queues (every member must use the same). */
enum class Strategy(internal val wire: String) {
    /** Contiguous blocks of queues. */
    AVERAGE("average"),

    /** Queues dealt round-robin. */
    AVERAGE_BY_CIRCLE("average_by_circle"),

    /** A consistent-hash ring: a member joining or leaving moves only its own queues. */
    CONSISTENT_HASH("consistent_hash"),

    /** Queues of one's own machine room first. */
    MACHINE_ROOM("machine_room"),
}

/** How a transaction ends, as a local transaction or a check-back answers. */
enum class Verdict(internal val wire: String) {
    /** Make the message visible. */
    COMMIT("commit"),

    /** Discard the message. */
    ROLLBACK("rollback"),

    /** Not known yet: the broker asks the producer group again later. */
    UNKNOWN("unknown"),
}

/** What a topic allows. */
enum class Perm(internal val wire: String) {
    /** Publish and consume. */
    READ_WRITE("rw"),

    /** Consume only. */
    READ("r"),

    /** Publish only. */
    WRITE("w"),
    ;

    internal companion object {
        fun of(wire: String): Perm = entries.first { it.wire == wire }
    }
}

/** Where a message is in its life. */
enum class MessageState {
    /** In its topic, visible to consumers. */
    STORED,

    /** Delayed: waiting for its delivery time. */
    SCHEDULED,

    /** A transactional half message, not yet committed. */
    HALF,
    ;

    internal companion object {
        fun of(wire: String): MessageState = when (wire) {
            "scheduled" -> SCHEDULED
            "half" -> HALF
            else -> STORED
        }
    }
}

/** Where a consumer group starts on a queue it has never consumed. */
sealed class StartPosition {
    /** The earliest retained message (the default). */
    object First : StartPosition()

    /** Only messages published from now on. */
    object Last : StartPosition()

    /** Messages stored at or after [epochMs]. */
    data class Timestamp(val epochMs: Long) : StartPosition()
}

/** Where [Admin.resetOffsets] moves a group, besides a timestamp. */
enum class ResetTo(internal val wire: String) {
    /** The earliest retained message: replay everything. */
    EARLIEST("earliest"),

    /** The end: skip everything published so far. */
    LATEST("latest"),
}

/** The result of a publish. [queueId] and [queueOffset] are null for delayed and
 * transactional sends (the message has no place in its topic yet). */
data class SendResult(
    val msgId: String,
    val queueId: Int?,
    val queueOffset: Long?,
    /** For transactional sends. */
    val transactionId: String?,
)

/** A message to publish in a batch ([Producer.sendBatch]); the same attributes as [Producer.send]. */
data class OutgoingMessage @JvmOverloads constructor(
    val body: ByteArray,
    val tag: String? = null,
    val keys: List<String> = emptyList(),
    val properties: Map<String, String> = emptyMap(),
    val delayLevel: Int? = null,
    val delayMs: Long? = null,
    val deliverAt: Long? = null,
    val shardingKey: String? = null,
    val idempotencyKey: String? = null,
) {
    /** A message whose body is [text] in UTF-8. */
    constructor(text: String) : this(text.encodeToByteArray())

    override fun equals(other: Any?): Boolean = other is OutgoingMessage && toFfi() == other.toFfi() &&
        body.contentEquals(other.body)

    override fun hashCode(): Int = body.contentHashCode() * 31 + (tag?.hashCode() ?: 0)

    internal fun toFfi() = dev.ferrymq.ffi.FfiOutgoing(
        body, tag, keys, properties, delayLevel, delayMs, deliverAt, shardingKey, idempotencyKey,
    )
}

/** A queue a push consumer consumes (the group's retry queue appears under its retry topic). */
data class QueueRef(val topic: String, val queueId: Int)

/** A topic. */
data class TopicInfo(val name: String, val queues: Int, val perm: Perm)

/** The offsets of one queue: [min] the lowest retained, [max] the one the next message gets. */
data class QueueOffsets(val queueId: Int, val min: Long, val max: Long)

/** A topic with the offsets of its queues. */
data class TopicDetail(val topic: TopicInfo, val queueOffsets: List<QueueOffsets>)

/** A group's subscription: a tag [filter] or an [sql] filter. */
data class Subscription(val topic: String, val filter: String?, val sql: String?, val mode: ConsumeMode)

/** A group member: [transport] is `ws`, `rest` or `native`. */
data class MemberInfo(val clientId: String, val transport: String, val since: Long)

/** A group's position on one queue: `lag = max - committed`. */
data class GroupOffset(val topic: String, val queueId: Int, val committed: Long, val max: Long, val lag: Long)

/** A consumer group. */
data class GroupInfo(
    val group: String,
    val maxReconsumeTimes: Int,
    val subscriptions: List<Subscription>,
    val members: List<MemberInfo>,
    val offsets: List<GroupOffset>,
)

/** Where a group's next pull of a queue starts after a reset. */
data class QueuePosition(val queueId: Int, val offset: Long)

internal fun dev.ferrymq.ffi.FfiSendResult.toSdk() = SendResult(msgId, queueId, queueOffset, transactionId)
