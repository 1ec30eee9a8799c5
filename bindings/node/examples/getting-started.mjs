// Getting started (the README's quickstart): an embedded broker in a temporary directory,
// one message published, consumed with a push consumer iterated with `for await`, and looked
// up by key. Run: node examples/getting-started.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Client, NotFound } from 'ferrymq';

const dir = mkdtempSync(join(tmpdir(), 'ferrymq-example-'));
const client = await Client.embedded(join(dir, 'data'), { config: { flush: 'async' } });
try {
  const producer = client.producer();
  const sent = await producer.send('orders', 'hello', { tag: 'new', keys: ['order-1'] });
  console.log('sent', sent.msgId);

  const consumer = await client.pushConsumer('billing', 'orders', { filter: 'new' }).start();
  for await (const message of consumer) {
    console.log('received', message.text, 'tag', message.tag);
    await message.ack();
    break;
  }

  const [found] = await client.admin().findMessages('orders', { key: 'order-1' });
  console.log('found', found.msgId === sent.msgId);

  try {
    await client.admin().topic('no-such-topic');
  } catch (e) {
    if (!(e instanceof NotFound)) throw e;
    console.log('error', e.code);
  }
} finally {
  await client.close();
  rmSync(dir, { recursive: true, force: true });
}
