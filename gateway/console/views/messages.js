// Messages: look one up by id, or a topic's messages by key or store-time range; show a
// message's body as text, JSON or hex, its properties and its state.

import { get } from "../api.js";
import { enc, field, h, link, replace, table, time } from "../dom.js";
import { guard } from "../ui.js";

export async function render(main, params, query) {
  if (params.length === 1) {
    const message = await get(`/v1/messages/${enc(params[0])}`);
    replace(main, h("h1", {}, "Message ", h("code", {}, message.msg_id)), h("p", {}, link(`/messages?topic=${enc(message.topic)}`, "Search messages")), messageDetail(message));
    return;
  }
  const byId = field("Message id", { name: "msg_id", autocomplete: "off", value: query.get("id") ?? "" });
  const idForm = h(
    "form",
    { class: "panel", "aria-labelledby": "by-id" },
    h("h2", { id: "by-id" }, "By id"),
    h("div", { class: "row" }, byId.wrap, h("button", { type: "submit" }, "Look up")),
  );
  idForm.addEventListener(
    "submit",
    guard(() => {
      if (byId.input.value.trim()) location.hash = `#/messages/${enc(byId.input.value.trim())}`;
    }),
  );

  const topic = field("Topic", { name: "topic", required: true, autocomplete: "off", value: query.get("topic") ?? "" });
  const key = field("Key", { name: "key", autocomplete: "off", value: query.get("key") ?? "" });
  const from = field("Stored from (local time, inclusive)", { name: "from", type: "datetime-local", step: 1, value: localInput(query.get("from_ts")) });
  const to = field("Stored before (local time)", { name: "to", type: "datetime-local", step: 1, value: localInput(query.get("to_ts")) });
  const limit = field("Limit", { name: "limit", type: "number", min: 1, max: 1000, value: query.get("limit") ?? 100 }, { small: true });
  const searchForm = h(
    "form",
    { class: "panel", "aria-labelledby": "by-key" },
    h("h2", { id: "by-key" }, "By key or time in a topic"),
    h("div", { class: "row" }, topic.wrap, key.wrap),
    h("div", { class: "row" }, from.wrap, to.wrap, limit.wrap),
    h("button", { type: "submit" }, "Search"),
  );
  const results = h("section", { "aria-labelledby": "results-title", "aria-live": "polite" });
  const detail = h("div");
  searchForm.addEventListener(
    "submit",
    guard(() => {
      if (!topic.input.reportValidity()) return;
      const q = new URLSearchParams({ topic: topic.input.value.trim() });
      if (key.input.value.trim()) q.set("key", key.input.value.trim());
      if (from.input.value) q.set("from_ts", String(new Date(from.input.value).getTime()));
      if (to.input.value) q.set("to_ts", String(new Date(to.input.value).getTime()));
      if (limit.input.value) q.set("limit", limit.input.value);
      location.hash = `#/messages?${q}`;
    }),
  );
  replace(main, h("h1", {}, "Messages"), h("div", { class: "grid2" }, idForm, searchForm), results, detail);

  if (query.get("topic")) {
    const q = new URLSearchParams();
    for (const name of ["key", "from_ts", "to_ts", "limit"]) if (query.get(name)) q.set(name, query.get(name));
    const { messages } = await get(`/v1/topics/${enc(query.get("topic"))}/messages?${q}`);
    const what = [query.get("key") ? `key ${query.get("key")}` : "", query.get("from_ts") || query.get("to_ts") ? "the time range" : ""].filter(Boolean).join(" and ");
    replace(
      results,
      h("h2", { id: "results-title" }, `${messages.length} message${messages.length === 1 ? "" : "s"} in ${query.get("topic")}${what ? ` with ${what}` : ""}`),
      table(
        "Messages found",
        [{ title: "Id" }, { title: "Stored" , narrow: true }, { title: "Tag" }, { title: "Keys" }, { title: "Body" }],
        messages.map((m) => [
          h("button", { type: "button", class: "secondary mono", onclick: () => replace(detail, h("h2", {}, "Message ", h("code", {}, m.msg_id)), messageDetail(m)) }, m.msg_id),
          time(m.store_ts),
          m.tag ?? "",
          m.keys.join(", "),
          preview(m),
        ]),
        "No messages match.",
      ),
    );
  }
}

function localInput(ms) {
  if (!ms) return undefined;
  const d = new Date(Number(ms));
  return new Date(d.getTime() - d.getTimezoneOffset() * 60000).toISOString().slice(0, 19);
}

/** A short text preview of a body. */
export function preview(m) {
  const text = m.body ?? `(${atob(m.body_base64).length} bytes, not UTF-8)`;
  return h("span", { class: "body" }, text.length > 120 ? text.slice(0, 120) + "…" : text);
}

/** The whole message: fields, properties, and the body as text, JSON or hex. */
export function messageDetail(m, extra = {}) {
  const bytes = Uint8Array.from(atob(m.body_base64), (c) => c.charCodeAt(0));
  const pre = h("pre", { class: "body", tabindex: 0, "aria-label": "Message body" });
  const views = {
    text: () => m.body ?? "(the body is not valid UTF-8; choose hex)",
    json: () => {
      try {
        return JSON.stringify(JSON.parse(m.body ?? ""), null, 2);
      } catch {
        return "(the body is not JSON)";
      }
    },
    hex: () => hexdump(bytes),
  };
  const initial = m.body === null ? "hex" : looksJson(m.body) ? "json" : "text";
  const name = `body-${Math.random().toString(36).slice(2, 8)}`;
  const radios = Object.keys(views).map((v) =>
    h(
      "label",
      { class: "radio" },
      h("input", { type: "radio", name, value: v, checked: v === initial, onchange: () => show(v) }),
      v === "json" ? "JSON" : v,
    ),
  );
  function show(v) {
    pre.dataset.view = v;
    pre.textContent = views[v]();
  }
  show(initial);
  const state = extra.state ?? m.state ?? "stored";
  const rows = [
    ["State", h("span", { class: state === "dead" ? "badge dead" : "badge", dataset: { field: "state" } }, state)],
    ["Topic", link(`/topics/${enc(m.topic)}`, m.topic)],
    ["Queue / offset", m.queue_id === null ? "– (not yet in its topic)" : `${m.queue_id} / ${m.queue_offset}`],
    ["Commit offset", m.commit_offset ?? "–"],
    ["Tag", m.tag ?? "–"],
    ["Keys", m.keys.length ? m.keys.join(", ") : "–"],
    ["Born", time(m.born_ts)],
    ["Stored", time(m.store_ts)],
    ["Reconsume times", m.reconsume_times],
    ["Body size", `${bytes.length} bytes`],
  ];
  const props = Object.entries(m.properties);
  return h(
    "div",
    { class: "grid2 message-detail" },
    h("section", {}, h("h3", {}, "Fields"), h("dl", { class: "props" }, rows.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]))),
    h(
      "section",
      {},
      h("h3", {}, "Properties"),
      props.length ? h("dl", { class: "props" }, props.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])) : h("p", { class: "empty" }, "No properties."),
      h("h3", {}, "Body"),
      h("fieldset", {}, h("legend", {}, "Show the body as"), radios),
      pre,
    ),
  );
}

function looksJson(text) {
  const t = text.trim();
  if (!(t.startsWith("{") || t.startsWith("["))) return false;
  try {
    JSON.parse(t);
    return true;
  } catch {
    return false;
  }
}

function hexdump(bytes) {
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const chunk = bytes.slice(i, i + 16);
    const hex = [...chunk].map((b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = [...chunk].map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${i.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  ${ascii}`);
  }
  return lines.join("\n") || "(empty)";
}
