// `https://` URLs: against a `ferrymq serve` speaking TLS with a certificate made here, the
// client verifies the server against `caFile`, publishes and consumes over it, and refuses a
// certificate nobody vouches for with a ConnectionError that names the problem.
'use strict';

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { after, before, describe, test } = require('node:test');

const { ferrymq, connect, startServer, tempDir, uniq } = require('./helpers');

/** A leaf certificate for localhost and 127.0.0.1 and its key, made with the openssl CLI. */
function selfSigned(dir) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-days', '1', '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      // A leaf, not a CA: rustls refuses a CA certificate as a server's own.
      '-addext', 'basicConstraints=critical,CA:FALSE',
      '-keyout', key, '-out', cert,
    ],
    { stdio: 'ignore' },
  );
  return { cert, key };
}

describe('a server speaking TLS', () => {
  let server;
  let dir;
  let cert;
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ferrymq-node-tls-'));
    const made = selfSigned(dir);
    cert = made.cert;
    server = await startServer({ tls_cert: made.cert, tls_key: made.key });
  }, { timeout: 60000 });
  after(async () => {
    if (server) await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }, { timeout: 60000 });

  test('publishes and consumes over https with caFile', { timeout: 60000 }, async (t) => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const client = await connect(server, { caFile: cert });
    t.after(() => client.close());
    assert.equal(client.transport, 'remote');
    const topic = uniq('secure');
    await client.admin().createTopic(topic, { queues: 2 });
    const producer = client.producer();
    const sent = await producer.send(topic, 'sealed', { tag: 'T' });
    const batch = await producer.sendBatch(topic, ['b1', 'b2']);

    const simple = client.simpleConsumer(uniq('readers'), topic);
    const got = [];
    const deadline = Date.now() + 15000;
    while (got.length < 3 && Date.now() < deadline) {
      for (const m of await simple.receive({ maxMessages: 8, waitMs: 1000 })) {
        await simple.ack(m);
        got.push(m);
      }
    }
    assert.deepEqual(got.map((m) => m.msgId).sort(), [sent.msgId, ...batch.map((r) => r.msgId)].sort());
    assert.equal(got.find((m) => m.msgId === sent.msgId).text, 'sealed');

    const push = await client.pushConsumer(uniq('g'), topic).start();
    t.after(() => push.close());
    const message = await push.recv({ timeoutMs: 15000 });
    assert.ok(message, 'a pushed message over TLS');
    await message.ack();
  });

  test('without the CA the connection is refused, naming the certificate', { timeout: 60000 }, async (t) => {
    await assert.rejects(
      () => ferrymq.Client.connect(server.url),
      (e) => e instanceof ferrymq.ConnectionError && e.code === 'connection' && /certificate/i.test(e.message),
    );
    const other = selfSigned(tempDir(t));
    await assert.rejects(
      () => ferrymq.Client.connect(server.url, { caFile: other.cert }),
      (e) => e instanceof ferrymq.ConnectionError && /certificate/i.test(e.message),
    );
  });

  test('a caFile that is not PEM is an InvalidArgument', async (t) => {
    const bogus = path.join(tempDir(t), 'bogus.pem');
    fs.writeFileSync(bogus, 'not a certificate');
    await assert.rejects(() => ferrymq.Client.connect(server.url, { caFile: bogus }), ferrymq.InvalidArgument);
  });
});
