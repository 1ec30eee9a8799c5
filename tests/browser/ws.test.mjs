// A page served by this test (another origin than the server) gets a ticket with fetch, subscribes
// through the browser's own WebSocket, receives messages published over HTTP, acks them, and the
// group's lag ends at 0.
//
// Needs FERRYMQ_URL (scripts/e2e.sh starts the server) and Chromium at /usr/bin/chromium.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import fs from "node:fs";
import { launchChromium } from "./chromium.mjs";

const BASE = process.env.FERRYMQ_URL;
const PAGE = fs.readFileSync(new URL("./page.html", import.meta.url));

async function api(method, route, body) {
  const response = await fetch(BASE + route, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : null };
}

function servePage() {
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(PAGE);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

async function until(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`timed out waiting for ${what}`);
}

test("a browser subscriber receives, acks, and leaves no lag", async () => {
  assert.ok(BASE, "FERRYMQ_URL must be set (run scripts/e2e.sh)");
  const suffix = Math.random().toString(16).slice(2, 10);
  const topic = `browser-${suffix}`;
  const group = `browser-g-${suffix}`;
  assert.equal((await api("POST", "/v1/topics", { name: topic, queues: 2 })).status, 201);

  const pageServer = await servePage();
  const { browser, userDataDir } = await launchChromium("ferrymq-chromium-");
  try {
    const page = await browser.newPage();
    const query = new URLSearchParams({ api: BASE, group, topic });
    await page.goto(`http://127.0.0.1:${pageServer.address().port}/?${query}`);
    await until("the subscription", () => page.evaluate(() => window.subscribed));

    const bodies = ["one", "two", "three"];
    for (const body of bodies) {
      assert.equal((await api("POST", `/v1/topics/${topic}/messages`, { body })).status, 200);
    }
    await until("three messages in the page", async () => (await page.evaluate(() => window.received.length)) === 3);
    assert.deepEqual((await page.evaluate(() => window.received)).sort(), [...bodies].sort());
    assert.deepEqual(await page.evaluate(() => window.errors), []);

    await until("lag 0", async () => {
      const detail = await api("GET", `/v1/groups/${group}`);
      return detail.status === 200 && detail.body.offsets.reduce((sum, o) => sum + o.lag, 0) === 0;
    });
    const detail = await api("GET", `/v1/groups/${group}`);
    assert.equal(detail.body.members[0].transport, "ws");
  } finally {
    await browser.close();
    pageServer.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
});
