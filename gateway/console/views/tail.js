// Live tail of a topic over the WebSocket protocol: a temporary group (`console-tail-<random>`)
// subscribes with `start: "last"`, so only messages stored from now on arrive, and acks each
// one it shows. Pause stops acking: held messages fill the subscription's credit window and the
// server stops sending until Resume shows and acks them. The filter box narrows what is shown.

import { get, openSocket } from "../api.js";
import { enc, field, h, replace, time } from "../dom.js";
import { guard, notify } from "../ui.js";

const CREDITS = 100;
const KEEP = 500;

export async function render(main, params) {
  const { topics } = await get("/v1/topics");
  const chosen = params[0] ?? "";
  const topic = field("Topic", {
    name: "topic",
    options: [h("option", { value: "" }, "Choose a topic"), ...topics.map((t) => h("option", { value: t.name, selected: t.name === chosen }, t.name))],
  }, { tag: "select" });
  const pick = h("form", { class: "panel", "aria-label": "Choose a topic" }, h("div", { class: "row" }, topic.wrap, h("button", { type: "submit" }, "Tail")));
  pick.addEventListener(
    "submit",
    guard(() => {
      if (topic.input.value) location.hash = `#/tail/${enc(topic.input.value)}`;
    }),
  );
  if (!chosen) {
    replace(main, h("h1", {}, "Live tail"), h("p", {}, "Shows messages as they are stored, from a temporary consumer group that starts at the latest offset."), pick);
    return;
  }

  const group = `console-tail-${Math.random().toString(36).slice(2, 10)}`;
  const status = h("p", { class: "status", role: "status", dataset: { state: "connecting" } }, "Connecting…");
  const pause = h("button", { type: "button", class: "secondary", "aria-pressed": "false", disabled: true }, "Pause");
  const filter = field("Filter (text in body, tag, keys or id)", { type: "search", name: "filter", autocomplete: "off" });
  const list = h("ol", { class: "tail-list", "aria-label": "Messages, newest first", reversed: true });
  const counter = h("p", { class: "hint" });
  replace(
    main,
    h("h1", {}, "Live tail of ", h("code", {}, chosen)),
    pick,
    status,
    h("div", { class: "row" }, filter.wrap, h("div", { class: "actions" }, pause)),
    counter,
    list,
  );

  const shown = [];
  const held = [];
  let paused = false;
  let received = 0;
  let socket = null;
  let closed = false;

  const matches = (m, needle) =>
    !needle || [m.body ?? "", m.tag ?? "", m.msg_id, ...m.keys].some((s) => s.toLowerCase().includes(needle));
  const row = (m) =>
    h(
      "li",
      { dataset: { msgId: m.msg_id } },
      h("div", { class: "meta" }, `${time(m.store_ts)} · queue ${m.queue_id} @ ${m.queue_offset} · `, h("a", { href: `#/messages/${enc(m.msg_id)}` }, m.msg_id), m.tag ? ` · tag ${m.tag}` : "", m.keys.length ? ` · keys ${m.keys.join(", ")}` : ""),
      h("div", { class: "body" }, m.body ?? `(${atob(m.body_base64).length} bytes, not UTF-8)`),
    );
  const redraw = () => {
    const needle = filter.input.value.trim().toLowerCase();
    const visible = shown.filter((m) => matches(m, needle));
    replace(list, visible.slice().reverse().map(row));
    counter.textContent = `${received} received, ${visible.length} shown${needle ? " (filtered)" : ""}${held.length ? `, ${held.length} held while paused` : ""}.`;
  };
  const show = (m) => {
    shown.push(m);
    if (shown.length > KEEP) shown.shift();
    socket?.send(JSON.stringify({ op: "ack", receipt: m.receipt }));
  };
  filter.input.addEventListener("input", redraw);
  pause.addEventListener("click", () => {
    paused = !paused;
    pause.textContent = paused ? "Resume" : "Pause";
    pause.setAttribute("aria-pressed", String(paused));
    status.dataset.state = paused ? "paused" : "live";
    status.textContent = paused ? `Paused: up to ${CREDITS} new messages are held, then the server waits.` : `Live: group ${group}, from the latest offset.`;
    if (!paused) {
      for (const m of held.splice(0)) show(m);
    }
    redraw();
  });
  redraw();

  try {
    socket = await openSocket();
  } catch (err) {
    status.dataset.state = "error";
    status.textContent = "Could not connect.";
    notify(err);
    return;
  }
  if (closed) {
    socket.close();
    return;
  }
  socket.addEventListener("open", () => {
    socket.send(JSON.stringify({ op: "subscribe", id: "tail", group, topic: chosen, start: "last", credits: CREDITS }));
  });
  socket.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    if (frame.op === "subscribed") {
      status.dataset.state = "live";
      status.textContent = `Live: group ${group}, from the latest offset.`;
      pause.disabled = false;
    } else if (frame.op === "message") {
      received += 1;
      if (paused) held.push(frame);
      else show(frame);
      redraw();
    } else if (frame.op === "error") {
      notify(`${frame.title ?? "Error"}: ${frame.detail ?? frame.type}`);
    }
  });
  socket.addEventListener("close", (event) => {
    if (closed) return;
    status.dataset.state = "error";
    status.textContent = `Disconnected (${event.code}${event.reason ? `: ${event.reason}` : ""}). Reload the view to reconnect.`;
    pause.disabled = true;
  });

  return () => {
    closed = true;
    socket?.close(1000, "left the view");
  };
}
