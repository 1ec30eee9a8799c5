package dev.ferrymq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The SDK from plain Java: the blocking twins, try-with-resources, exceptions by class. */
class JavaBlockingTest {
    @Test
    void publishesAndConsumes(@TempDir Path dir) throws Exception {
        try (Client client = Client.embeddedBlocking(dir.toString(), Map.of("segment_bytes", "8MiB"))) {
            Producer producer = client.producer();
            List<String> sent = new ArrayList<>();
            for (int i = 0; i < 3; i++) {
                SendResult result = producer.sendBlocking("java-orders", ("order " + i).getBytes(StandardCharsets.UTF_8), "new");
                sent.add(result.getMsgId());
            }
            try (SimpleConsumer consumer = client.simpleConsumer("java-billing", "java-orders", "new")) {
                List<String> received = new ArrayList<>();
                while (received.size() < 3) {
                    for (Message m : consumer.receiveBlocking(16, 1000L, 30000L)) {
                        assertEquals("new", m.getTag());
                        consumer.ackBlocking(m);
                        received.add(m.getMsgId());
                    }
                }
                assertEquals(sent, received);
            }
            assertThrows(FerryException.NotFound.class, () -> client.admin().groupBlocking("java-nobody"));
        }
    }
}
