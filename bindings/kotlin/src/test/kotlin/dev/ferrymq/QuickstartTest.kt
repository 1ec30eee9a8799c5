package dev.ferrymq

import kotlinx.coroutines.flow.first
import org.junit.jupiter.api.Assertions.assertEquals
import org.junit.jupiter.api.Test

/** The quickstart of bindings/kotlin/README.md, as it is written there. */
class QuickstartTest {
    @Test
    fun `the README quickstart runs`() = coTest {
        // The default 1 GiB segment is allocated on disk: delete it after.
        val dataDir = tempDir().path
        // --- README quickstart ---
        Client.embedded(dataDir).use { client ->
            val sent = client.producer().send("orders", "order 42".encodeToByteArray(), tag = "paid", keys = listOf("order-42"))

            val consumer = client.pushConsumer("billing", "orders", filter = "paid")
            // Collecting starts the consumer; when the collection ends, it closes.
            val message = consumer.messages().first { m -> println("${m.msgId}: ${m.text}"); m.ack(); true }

            assertEquals(sent.msgId, message.msgId)
        }
        // --- end ---
    }
}
