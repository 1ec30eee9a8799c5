// Type-level tests of index.d.ts, checked by `tsc --strict` (never run): every export is
// usable as documented, and misuse is a compile error (`@ts-expect-error` fails the check if
// the line below it compiles).
import {
  Admin,
  Client,
  Conflict,
  ConnectionError,
  FerryError,
  Forbidden,
  Group,
  InvalidArgument,
  Message,
  NotFound,
  PushConsumer,
  SimpleConsumer,
  Timeout,
  Topic,
  TransactionProducer,
  TransactionVerdict,
  Unauthorized,
} from 'ferrymq';
import ferrymq from 'ferrymq';

export async function everything(path: string): Promise<void> {
  const client: Client = await Client.embedded(path, { config: { delay_levels: '100ms 200ms', segment_bytes: 1 << 20 } });
  const transport: 'embedded' | 'remote' = client.transport;
  void transport;
  const producer = client.producer();
  await producer.send('t', new Uint8Array([1, 2]), { delayLevel: 1 });
  const results = await producer.sendBatch('t', ['a', Buffer.from('b'), { body: 'c', shardingKey: 'k' }]);
  const offsets: Array<number | null> = results.map((r) => r.queueOffset);
  void offsets;

  const tx: TransactionProducer = await client.transactionProducer('pg', () => 'commit');
  await tx.sendInTransaction('t', 'x', (half) => (half.reconsumeTimes > 0 ? 'rollback' : 'commit'));
  // TypeScript widens the string an async arrow returns: type the verdict.
  await tx.sendInTransaction('t', 'x', async (): Promise<TransactionVerdict> => 'rollback');
  await tx.sendInTransaction('t', 'x', async () => 'commit' as const);
  await tx.endTransaction('id', 'commit');

  const consumer: PushConsumer = await client.pushConsumer('g', 't', { orderly: true, start: Date.now() }).start();
  for await (const message of consumer) {
    const body: Buffer = message.body;
    const queue: number | null = message.queueId;
    void body;
    void queue;
    await message.nack({ delayMs: 100 });
  }
  const next: Message | null = await consumer.recv({ timeoutMs: 10 });
  void next;
  console.log(consumer.assignment().map((q) => `${q.topic}/${q.queueId}`));

  const hooked = client.pushConsumer('g', 't', {
    onAssign: (queues) => {
      for (const q of queues) console.log(`${q.topic}/${q.queueId}`);
    },
    onRevoke: async (queues): Promise<void> => {
      const ids: number[] = queues.map((q) => q.queueId);
      void ids;
    },
  });
  hooked.on('hookError', (error, info) => {
    const which: 'onAssign' | 'onRevoke' = info.hook;
    console.log(which, info.queues.length, error);
  });
  // @ts-expect-error a hook is given queues, not a number
  client.pushConsumer('g', 't', { onAssign: (n: number) => n });

  const simple: SimpleConsumer = client.simpleConsumer('g', 't', { sql: 'a > 1' });
  const [first] = await simple.receive({ maxMessages: 1 });
  if (first) await simple.changeInvisibleDuration(first, 5000);

  const admin: Admin = client.admin();
  const topic: Topic = await admin.createTopic('t2', { queues: 2, perm: 'r' });
  const group: Group = await admin.group('g');
  const lag = group.offsets.reduce((n, o) => n + o.lag, 0);
  void [topic, lag];
  await admin.resetOffsets('g', 't', { to: 'earliest' });
  await admin.resetOffsets('g', 't', { timestamp: new Date() });
  const dead: Message[] = await admin.dlq('g');
  if (dead[0]) await admin.resendDlq('g', dead[0].msgId);
  await admin.findMessages('t', { key: 'k', fromTs: 0, limit: 10 });

  try {
    await admin.message('id');
  } catch (e) {
    if (e instanceof NotFound || e instanceof Conflict || e instanceof Timeout) console.log(e.code);
    if (e instanceof ConnectionError || e instanceof Unauthorized || e instanceof Forbidden) console.log(e.retriable);
    if (e instanceof InvalidArgument) console.log(e.field);
    if (e instanceof FerryError) console.log(e.type);
  }
  const viaDefault: typeof Client = ferrymq.Client;
  void viaDefault;
  await client.close();
}

export async function misuse(client: Client): Promise<void> {
  // @ts-expect-error: mode is 'clustering' or 'broadcasting'
  client.pushConsumer('g', 't', { mode: 'fanout' });
  // @ts-expect-error: the strategy names are fixed
  client.pushConsumer('g', 't', { strategy: 'random' });
  // @ts-expect-error: a verdict is commit, rollback or unknown
  await client.transactionProducer('pg', () => 'yes');
  // @ts-expect-error: perm is rw, r or w
  await client.admin().createTopic('t', { perm: 'rwx' });
  // @ts-expect-error: a body is bytes or a string
  await client.producer().send('t', 42);
  // @ts-expect-error: options are named
  await client.producer().send('t', 'x', { delay: 5 });
  // @ts-expect-error: start is first, last or a time
  client.pushConsumer('g', 't', { start: 'middle' });
  // @ts-expect-error: Message has no public constructor
  new Message();
}
