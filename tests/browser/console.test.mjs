// The web console at /console, driven in headless Chromium: create a topic, see a message
// published over REST in the live tail (with pause and the filter), find it by key, drive a
// message to the DLQ and resend it, reset a group's offsets; and against a second server with an
// auth_file, sign in with a read-only token and find the admin actions disabled and a 403 shown.
//
// Needs FERRYMQ_URL (a server without auth) and FERRYMQ_BIN (the `ferrymq` binary, to start the
// server with an auth_file); scripts/e2e.sh sets both. Chromium at /usr/bin/chromium.
// Screenshots of every view go to tests/browser/screenshots/ (git-ignored) on each run.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { launchChromium } from "./chromium.mjs";

const BASE = process.env.FERRYMQ_URL;
const BIN = process.env.FERRYMQ_BIN;
const SHOTS = new URL("./screenshots/", import.meta.url).pathname;
const suffix = Math.random().toString(16).slice(2, 10);

let browser;
let userDataDir;

async function api(base, method, route, body, token) {
  const headers = {};
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  const response = await fetch(base + route, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed };
}

async function until(what, check, timeoutMs = 15000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

async function shot(page, name) {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`) });
}

/** A page on `base`'s console that records uncaught errors and failed requests. */
async function openConsole(base, hash = "") {
  const page = await browser.newPage();
  page.problems = [];
  page.on("pageerror", (err) => page.problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error" && !/status of (403|401)/.test(msg.text())) page.problems.push(`console: ${msg.text()}`);
  });
  page.on("requestfailed", (req) => page.problems.push(`requestfailed: ${req.url()}`));
  page.on("request", (req) => {
    const url = new URL(req.url());
    if (url.origin !== new URL(base).origin && url.protocol.startsWith("http")) page.problems.push(`outside request: ${req.url()}`);
  });
  await page.goto(`${base}/console${hash}`);
  return page;
}

/** Drives one message of `topic` to the DLQ of `group` (max_reconsume_times already set). */
async function nackUntilDead(base, group, topic, msgId, token) {
  await until(
    `${msgId} in the DLQ of ${group}`,
    async () => {
      const got = await api(base, "POST", `/v1/groups/${group}/receive`, { topic, max_messages: 10, wait_ms: 200, invisible_ms: 1000 }, token);
      assert.equal(got.status, 200, JSON.stringify(got.body));
      const receipts = got.body.messages.map((m) => m.receipt);
      if (receipts.length) {
        const nacked = await api(base, "POST", `/v1/groups/${group}/nack`, { receipts, delay_ms: 1 }, token);
        assert.equal(nacked.status, 200, JSON.stringify(nacked.body));
      }
      const dlq = await api(base, "GET", `/v1/groups/${group}/dlq`, undefined, token);
      return dlq.status === 200 && dlq.body.messages.some((m) => m.msg_id === msgId);
    },
    30000,
  );
}

before(async () => {
  assert.ok(BASE, "FERRYMQ_URL must be set (run scripts/e2e.sh)");
  ({ browser, userDataDir } = await launchChromium("ferrymq-console-chromium-", {
    viewport: { width: 1280, height: 800 },
  }));
});

after(async () => {
  await browser?.close();
  if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
});

test("create a topic in the console, see a REST publish in the live tail, find it by key", async () => {
  const topic = `console-${suffix}`;
  const key = `order-${suffix}`;
  const started = Date.now();
  const page = await openConsole(BASE);
  await page.getByRole("heading", { level: 1, name: "Overview" }).waitFor();
  await page.locator('[data-stat="topics"]').waitFor();

  // Keyboard: the first Tab reaches the skip link, which moves focus to <main>.
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
  await page.keyboard.press("Enter");
  assert.equal(await page.evaluate(() => document.activeElement.id), "main");

  await page.getByRole("link", { name: "Topics", exact: true }).click();
  await page.getByLabel("Name").fill(topic);
  await page.getByLabel("Queues").fill("2");
  await page.getByRole("button", { name: "Create topic" }).click();
  await page.getByRole("heading", { level: 1, name: `Topic ${topic}` }).waitFor();
  const created = await api(BASE, "GET", `/v1/topics/${topic}`);
  assert.equal(created.status, 200);
  assert.equal(created.body.queues, 2);
  assert.equal(created.body.perm, "rw");

  // Publish a test message from the topic view; the queue table shows it.
  await page.getByLabel("Body").fill('{"hello": "console"}');
  await page.getByLabel("Tag").fill("TagA");
  await page.getByRole("button", { name: "Publish" }).click();
  await page.getByText(/^Published /).waitFor();
  await until("the queue table to count the message", async () => (await page.locator('[data-stat="retained"]').textContent()) === "1");
  await shot(page, "topic");

  // Live tail: a temporary group from `last`; a message published over REST shows up.
  await page.goto(`${BASE}/console#/tail/${topic}`);
  await page.locator('[role=status][data-state="live"]').waitFor();
  const sent = await api(BASE, "POST", `/v1/topics/${topic}/messages`, { body: `tail body ${suffix}`, keys: [key], tag: "TagB" });
  assert.equal(sent.status, 200);
  const row = page.locator(`.tail-list li[data-msg-id="${sent.body.msg_id}"]`);
  await row.waitFor();
  assert.match(await row.textContent(), new RegExp(`tail body ${suffix}`));
  // The message published from the topic view came before the tail started: not shown.
  assert.equal(await page.locator(".tail-list li").count(), 1);

  // The filter box hides what does not match, and shows it again.
  await page.getByLabel(/^Filter/).fill("no such text");
  await until("the row to be filtered out", async () => (await page.locator(".tail-list li").count()) === 0);
  await page.getByLabel(/^Filter/).fill(key);
  await row.waitFor();

  // Pause holds new messages; Resume shows them.
  await page.getByRole("button", { name: "Pause" }).click();
  const held = await api(BASE, "POST", `/v1/topics/${topic}/messages`, { body: `held ${suffix}`, keys: [key] });
  await page.getByText(/1 held while paused/).waitFor();
  assert.equal(await page.locator(`.tail-list li[data-msg-id="${held.body.msg_id}"]`).count(), 0);
  await page.getByRole("button", { name: "Resume" }).click();
  await page.locator(`.tail-list li[data-msg-id="${held.body.msg_id}"]`).waitFor();
  await shot(page, "tail");

  // Find by key: both messages with the key, and the detail of the first.
  await page.getByRole("link", { name: "Messages", exact: true }).click();
  await page.getByLabel("Topic", { exact: true }).fill(topic);
  await page.getByLabel("Key", { exact: true }).fill(key);
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("heading", { name: `2 messages in ${topic} with key ${key}` }).waitFor();
  await page.getByRole("button", { name: sent.body.msg_id }).click();
  await page.getByRole("heading", { name: `Message ${sent.body.msg_id}` }).waitFor();
  assert.equal(await page.locator('[data-field="state"]').textContent(), "stored");
  assert.equal(await page.locator("pre.body").textContent(), `tail body ${suffix}`);
  await page.getByLabel("hex").check();
  assert.match(await page.locator("pre.body").textContent(), /^00000000  74 61 69 6c/);
  await shot(page, "messages");

  // By store-time range (local time in the form, second precision): all three of the topic.
  const stored = (await api(BASE, "GET", `/v1/messages/${sent.body.msg_id}`)).body.store_ts;
  const local = (ms) => page.evaluate((t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 19), ms);
  await page.getByLabel("Key", { exact: true }).fill("");
  await page.getByLabel(/^Stored from/).fill(await local(Math.floor(started / 1000) * 1000));
  await page.getByLabel(/^Stored before/).fill(await local(stored + 3600_000));
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("heading", { name: `3 messages in ${topic} with the time range` }).waitFor();
  await page.getByRole("button", { name: held.body.msg_id }).waitFor();

  // By id.
  await page.getByLabel("Message id").fill(held.body.msg_id);
  await page.getByRole("button", { name: "Look up" }).click();
  await page.getByRole("heading", { level: 1, name: `Message ${held.body.msg_id}` }).waitFor();
  assert.equal(await page.locator("pre.body").textContent(), `held ${suffix}`);
  assert.deepEqual(page.problems, []);
  await page.close();
});

test("drive a message to the DLQ and resend it from the console; reset a group's offsets", async () => {
  const topic = `console-dlq-${suffix}`;
  const group = `console-g-${suffix}`;
  assert.equal((await api(BASE, "POST", "/v1/topics", { name: topic, queues: 1 })).status, 201);
  assert.equal((await api(BASE, "PUT", `/v1/groups/${group}`, { max_reconsume_times: 1 })).status, 200);
  const ok = [];
  for (const body of ["first", "second"]) ok.push((await api(BASE, "POST", `/v1/topics/${topic}/messages`, { body })).body.msg_id);
  const dead = (await api(BASE, "POST", `/v1/topics/${topic}/messages`, { body: "doomed", keys: ["doomed"] })).body.msg_id;
  // Ack the two good ones, nack the third until it is dead.
  await until("the two good messages acked", async () => {
    const got = await api(BASE, "POST", `/v1/groups/${group}/receive`, { topic, max_messages: 10, wait_ms: 200 });
    const good = got.body.messages.filter((m) => ok.includes(m.msg_id)).map((m) => m.receipt);
    const bad = got.body.messages.filter((m) => m.msg_id === dead).map((m) => m.receipt);
    if (good.length) await api(BASE, "POST", `/v1/groups/${group}/ack`, { receipts: good });
    if (bad.length) await api(BASE, "POST", `/v1/groups/${group}/nack`, { receipts: bad, delay_ms: 1 });
    const detail = await api(BASE, "GET", `/v1/groups/${group}`);
    return detail.body.offsets.some((o) => o.topic === topic && o.committed >= 2);
  });
  await nackUntilDead(BASE, group, topic, dead);

  const page = await openConsole(BASE, `#/groups/${group}/dlq`);
  const row = page.getByRole("row").filter({ hasText: dead });
  await row.waitFor();
  await page.getByRole("button", { name: dead }).click();
  assert.equal(await page.locator('[data-field="state"]').textContent(), "dead");
  await shot(page, "dlq");
  await row.getByRole("button", { name: "Resend" }).click();
  await page.getByText("The DLQ is empty.").waitFor();
  await page.getByText(new RegExp(`Re-sent ${dead} to ${topic}`)).waitFor();
  const dlq = await api(BASE, "GET", `/v1/groups/${group}/dlq`);
  assert.deepEqual(dlq.body.messages, []);
  await until("the re-sent message back in the group", async () => {
    const got = await api(BASE, "POST", `/v1/groups/${group}/receive`, { topic, max_messages: 10, wait_ms: 200 });
    const back = got.body.messages.find((m) => m.msg_id === dead);
    if (back) {
      assert.equal(back.reconsume_times, 0);
      await api(BASE, "POST", `/v1/groups/${group}/ack`, { receipts: got.body.messages.map((m) => m.receipt) });
    }
    return Boolean(back);
  });
  await until("lag 0", async () => (await api(BASE, "GET", `/v1/groups/${group}`)).body.offsets.every((o) => o.lag === 0));

  // Reset to a time after every message: nothing is due. Then to the earliest: all of it is.
  await page.goto(`${BASE}/console#/groups/${group}`);
  await page.getByRole("heading", { level: 1, name: `Group ${group}` }).waitFor();
  await page.getByRole("heading", { name: "Reset offsets" }).waitFor();
  await page.getByLabel("Topic", { exact: true }).selectOption(topic);
  await page.getByLabel("a time").check();
  const later = await page.evaluate((t) => new Date(t - new Date(t).getTimezoneOffset() * 60000).toISOString().slice(0, 19), Date.now() + 3600_000);
  await page.getByLabel("Time (local)").fill(later);
  await page.getByRole("button", { name: "Reset offsets" }).click();
  await page.getByText(new RegExp(`^Reset ${group} on ${topic} to 2`)).waitFor();
  const skipped = (await api(BASE, "GET", `/v1/groups/${group}`)).body.offsets.filter((o) => o.topic === topic);
  assert.deepEqual(skipped.map((o) => [o.committed, o.lag]), [[4, 0]]);
  await page.getByLabel("the earliest message").check();
  await page.getByRole("button", { name: "Reset offsets" }).click();
  await page.getByText(`Reset ${group} on ${topic} to the earliest:`).waitFor();
  const detail = await api(BASE, "GET", `/v1/groups/${group}`);
  const offsets = detail.body.offsets.filter((o) => o.topic === topic);
  assert.equal(offsets.reduce((a, o) => a + o.committed, 0), 0);
  assert.ok(offsets.reduce((a, o) => a + o.lag, 0) >= 4, JSON.stringify(offsets));
  // The chart picks up the new lag within a poll or two.
  await until("the lag card to show the reset", async () => Number((await page.locator('[data-stat="lag"]').textContent()).replace(/,/g, "")) >= 4);
  await page.locator("svg.chart polyline").first().waitFor();
  await shot(page, "group");

  // The overview counts the topics and groups made so far, with rates after two polls.
  await page.getByRole("link", { name: "Overview", exact: true }).click();
  await page.getByRole("link", { name: group }).waitFor();
  await until("rates", async () => (await page.locator('[data-stat="in-rate"]').textContent()) !== "…");
  assert.ok(Number(await page.locator('[data-stat="topics"]').textContent()) >= 2);
  await shot(page, "overview");

  // Phone width: nothing wider than the window.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.goto(`${BASE}/console#/`);
  await page.locator('[data-stat="topics"]').waitFor();
  for (const hash of ["#/", `#/groups/${group}`, `#/groups/${group}/dlq`, "#/messages", `#/topics/${topic}`, `#/tail/${topic}`]) {
    await page.goto(`${BASE}/console${hash}`);
    await page.locator("main h1").waitFor();
    await page.waitForTimeout(300);
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 390, `${hash} is ${width}px wide at 390px`);
  }
  await page.goto(`${BASE}/console#/groups/${group}`);
  await page.locator("svg.chart").waitFor();
  await shot(page, "group-phone");
  assert.deepEqual(page.problems, []);
  await page.close();
});

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

test("with an auth_file: sign in, a read-only token sees the resend button disabled and a 403 plainly", async () => {
  assert.ok(BIN, "FERRYMQ_BIN must be set (run scripts/e2e.sh)");
  const work = fs.mkdtempSync(path.join(os.tmpdir(), "ferrymq-console-auth-"));
  const authFile = path.join(work, "auth.toml");
  fs.writeFileSync(
    authFile,
    [
      "[[tokens]]",
      'token = "admin-token"',
      'topics = ["*"]',
      'groups = ["*"]',
      'actions = ["publish", "consume", "admin"]',
      "",
      "[[tokens]]",
      'token = "reader-token"',
      'topics = ["*"]',
      'groups = ["*"]',
      'actions = ["consume"]',
      "",
    ].join("\n"),
  );
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const server = spawn(
    BIN,
    ["serve", "--data-dir", path.join(work, "data"), "--listen", `127.0.0.1:${port}`, "--set", "segment_bytes=1MiB", "--set", `auth_file=${authFile}`],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  server.stderr.on("data", (d) => (log += d));
  try {
    await until("the auth server", async () => {
      try {
        return (await fetch(`${base}/healthz`)).status === 200;
      } catch {
        return false;
      }
    });
    const admin = "admin-token";
    const topic = "guarded";
    const group = "guarded-g";
    assert.equal((await api(base, "POST", "/v1/topics", { name: topic, queues: 1 }, admin)).status, 201);
    assert.equal((await api(base, "PUT", `/v1/groups/${group}`, { max_reconsume_times: 0 }, admin)).status, 200);
    const dead = (await api(base, "POST", `/v1/topics/${topic}/messages`, { body: "dead on arrival" }, admin)).body.msg_id;
    await nackUntilDead(base, group, topic, dead, admin);

    const page = await openConsole(base);
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await page.getByLabel("Access token").fill("wrong-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("401 Unauthorized: the token is not valid.").waitFor();
    await page.getByLabel("Access token").fill("reader-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByText("no admin grant").waitFor();
    assert.equal(await page.evaluate(() => sessionStorage.getItem("ferrymq.console.token")), "reader-token");
    assert.equal(await page.evaluate(() => localStorage.length), 0);

    await page.goto(`${base}/console#/groups/${group}/dlq`);
    const row = page.getByRole("row").filter({ hasText: dead });
    await row.waitFor();
    assert.equal(await row.getByRole("button", { name: "Resend" }).isDisabled(), true);
    assert.equal(await page.getByRole("button", { name: "Resend all" }).isDisabled(), true);
    await page.getByText("Your token is not granted admin here.").first().waitFor();
    await shot(page, "auth-readonly-dlq");

    // Resetting offsets is admin too; the overview falls back to the REST API without /metrics.
    await page.goto(`${base}/console#/groups/${group}`);
    assert.equal(await page.getByRole("button", { name: "Reset offsets" }).isDisabled(), true);
    await page.goto(`${base}/console#/`);
    await page.getByText("Rates and lag from the REST API").waitFor();
    await page.getByRole("link", { name: group }).waitFor();
    assert.equal(await page.locator('[data-stat="lag"]').textContent(), "0");

    // Publishing cannot be learned in advance: the first try answers 403, shown plainly, and
    // the button is disabled from then on.
    await page.goto(`${base}/console#/topics/${topic}`);
    assert.equal(await page.getByRole("button", { name: "Delete topic…" }).isDisabled(), true);
    await page.getByLabel("Body").fill("not allowed");
    await page.getByRole("button", { name: "Publish" }).click();
    const alert = page.locator("#notice");
    await alert.getByText(/^403 Forbidden: the token is not granted publish/).waitFor();
    assert.equal(await page.getByRole("button", { name: "Publish" }).isDisabled(), true);
    await shot(page, "auth-403");

    // The live tail works through a ticket (no token in the WebSocket URL).
    const sockets = [];
    page.on("websocket", (ws) => sockets.push(ws.url()));
    await page.goto(`${base}/console#/tail/${topic}`);
    await page.locator('[role=status][data-state="live"]').waitFor();
    const sent = await api(base, "POST", `/v1/topics/${topic}/messages`, { body: "over a ticket" }, admin);
    await page.locator(`.tail-list li[data-msg-id="${sent.body.msg_id}"]`).waitFor();
    assert.equal(sockets.length, 1);
    assert.match(sockets[0], /\/v1\/ws\?ticket=/);
    assert.doesNotMatch(sockets[0], /reader-token/);
    assert.deepEqual(page.problems, []);
    await page.close();
  } catch (err) {
    console.error(log.slice(-4000));
    throw err;
  } finally {
    server.kill("SIGTERM");
    await new Promise((resolve) => (server.exitCode !== null ? resolve() : server.once("exit", resolve)));
    fs.rmSync(work, { recursive: true, force: true });
  }
});
