// A typed example: a producer with attributes, a transactional producer with an async
// check-back, a push consumer with a listener, and a simple consumer; checked by
// `tsc --strict` (test.sh) against index.d.ts.
import { Client, FerryError, Message, SendResult, TransactionVerdict } from 'ferrymq';

async function decide(message: Message): Promise<TransactionVerdict> {
  return message.properties['paid'] === 'yes' ? 'commit' : 'rollback';
}

export async function run(url: string): Promise<number> {
  const client = await Client.connect(url, { token: process.env.FERRYMQ_TOKEN, requestTimeoutMs: 5000 });
  try {
    const producer = client.producer('shop');
    producer.on('error', (error) => console.error(`one-way send to ${error.topic} failed: ${error.code}`));
    const sent: SendResult = await producer.send('orders', Buffer.from('{"id":1}'), {
      tag: 'created',
      keys: ['order-1'],
      properties: { region: 'eu', amount: 12.5 },
      deliverAt: new Date(Date.now() + 1000),
    });
    producer.sendOneway('audit', 'order-1 created');

    const transactions = await client.transactionProducer('shop-tx', decide);
    const result = await transactions.sendInTransaction('payments', 'pay order-1', async (): Promise<TransactionVerdict> => 'unknown', {
      properties: { paid: 'yes' },
    });
    console.log(result.transactionId ?? 'no transaction id');

    const consumer = client.pushConsumer('billing', 'orders', {
      sql: "region = 'eu'",
      mode: 'clustering',
      strategy: 'consistent_hash',
      start: 'first',
      listener: async (message: Message) => {
        if (message.reconsumeTimes > 3) throw new Error('give up');
      },
    });
    consumer.on('listenerError', (error, message) => console.warn(message.msgId, error));
    await consumer.start();

    const simple = client.simpleConsumer('audit-readers', 'audit', { filter: '*' });
    const received = await simple.receive({ maxMessages: 10, waitMs: 1000, invisibleMs: 30000 });
    for (const message of received) {
      if (!message.text) await simple.nack(message, { delayMs: 500 });
      else await message.ack();
    }
    await consumer.close();
    transactions.close();
    return sent.queueOffset ?? -1;
  } catch (e) {
    if (e instanceof FerryError && e.retriable) return -1;
    throw e;
  } finally {
    await client.close();
  }
}
