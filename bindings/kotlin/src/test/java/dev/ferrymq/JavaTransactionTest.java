package dev.ferrymq;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;

import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Transactions and a push-consumer listener from plain Java: the callback interfaces are lambdas. */
class JavaTransactionTest {
    @Test
    void commitsFromJavaAndListensWithALambda(@TempDir Path dir) throws Exception {
        try (Client client = Client.embeddedBlocking(dir.toString(), Map.of("segment_bytes", "8MiB"))) {
            try (TransactionProducer producer = client.transactionProducerBlocking("java-tx", half -> Verdict.COMMIT)) {
                SendResult result = producer.sendInTransactionBlocking(
                        "java-payments", "paid".getBytes(StandardCharsets.UTF_8), half -> Verdict.COMMIT, "card");
                assertNotNull(result.getTransactionId());
                List<String> seen = new java.util.concurrent.CopyOnWriteArrayList<>();
                try (PushConsumer consumer = client.pushConsumer("java-ledger", "java-payments", "card", null,
                        ConsumeMode.CLUSTERING, false, Strategy.AVERAGE, StartPosition.First.INSTANCE,
                        message -> seen.add(message.getMsgId()))) {
                    consumer.startBlocking();
                    long deadline = System.nanoTime() + 30_000_000_000L;
                    while (seen.isEmpty() && System.nanoTime() < deadline) Thread.sleep(20);
                }
                assertEquals(List.of(result.getMsgId()), seen);
            }
        }
    }
}
