// Topics: the list with a create form; one topic with its queues (min and max offsets), its
// permission, delete, and a form that publishes a test message.

import { del, get, post } from "../api.js";
import { enc, field, h, link, num, replace, table } from "../dom.js";
import { actionButton, poll } from "../ui.js";

export function render(main, params) {
  return params.length === 0 ? renderList(main) : renderTopic(main, params[0]);
}

function renderList(main) {
  const name = field("Name", { name: "name", required: true, pattern: "[A-Za-z0-9_\\-]{1,127}", autocomplete: "off" });
  const queues = field("Queues", { name: "queues", type: "number", min: 1, max: 1024, value: 8 }, { small: true });
  const perm = field("Permission", { name: "perm", options: permOptions("rw") }, { small: true, tag: "select" });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "create-topic", onsubmit: (e) => e.preventDefault() },
    h("h2", { id: "create-topic" }, "Create a topic"),
    h("div", { class: "row" }, name.wrap, queues.wrap, perm.wrap),
    actionButton(
      "Create topic",
      "admin",
      null,
      async () => {
        if (!name.input.reportValidity()) return;
        const topic = await post("/v1/topics", { name: name.input.value, queues: Number(queues.input.value), perm: perm.input.value });
        location.hash = `#/topics/${enc(topic.name)}`;
        return `Created topic ${topic.name}.`;
      },
      { type: "submit" },
    ),
  );
  const list = h("div");
  replace(main, h("h1", {}, "Topics"), form, h("h2", {}, "All topics"), list);
  return poll(async () => {
    const { topics } = await get("/v1/topics");
    replace(
      list,
      table(
        "Topics",
        [{ title: "Topic" }, { title: "Queues", num: true }, { title: "Perm" }],
        topics.map((t) => [link(`/topics/${enc(t.name)}`, t.name), num(t.queues), t.perm]),
        "No topics yet.",
      ),
    );
  }, 3000);
}

function permOptions(selected) {
  return [
    ["rw", "rw (read and write)"],
    ["r", "r (read only)"],
    ["w", "w (write only)"],
  ].map(([value, text]) => h("option", { value, selected: value === selected }, text));
}

async function renderTopic(main, name) {
  const topic = await get(`/v1/topics/${enc(name)}`);
  const summary = h("dl", { class: "cards" });
  const queues = h("div");
  const confirmBox = h("div", { class: "actions" });

  const deleteButton = actionButton("Delete topic…", "admin", `topic:${name}`, async () => {
    replace(
      confirmBox,
      h("span", { role: "alert" }, `Delete topic ${name}, its queues and every group's offsets on it?`),
      actionButton(
        "Yes, delete",
        "admin",
        `topic:${name}`,
        async () => {
          await del(`/v1/topics/${enc(name)}`);
          location.hash = "#/topics";
          return `Deleted topic ${name}.`;
        },
        { class: "danger" },
      ),
      h("button", { type: "button", class: "secondary", onclick: () => replace(confirmBox) }, "Cancel"),
    );
    confirmBox.querySelector("button")?.focus();
  }, { class: "danger" });

  replace(
    main,
    h("h1", {}, "Topic ", h("code", {}, name)),
    h("p", { class: "actions" }, link(`/tail/${enc(name)}`, "Live tail"), " · ", link(`/messages?topic=${enc(name)}`, "Find messages")),
    summary,
    h("h2", {}, "Queues"),
    queues,
    publishForm(name),
    h("section", { class: "panel", "aria-labelledby": "danger" }, h("h2", { id: "danger" }, "Delete"), deleteButton, confirmBox),
  );

  const show = (t) => {
    const total = t.queue_offsets.reduce((a, q) => a + (q.max - q.min), 0);
    replace(
      summary,
      h("div", { class: "card" }, h("dt", {}, "Queues"), h("dd", {}, num(t.queues))),
      h("div", { class: "card" }, h("dt", {}, "Permission"), h("dd", { dataset: { stat: "perm" } }, t.perm)),
      h("div", { class: "card" }, h("dt", {}, "Retained messages"), h("dd", { dataset: { stat: "retained" } }, num(total))),
    );
    replace(
      queues,
      table(
        "Queues",
        [{ title: "Queue", num: true }, { title: "Min offset", num: true }, { title: "Max offset", num: true }, { title: "Messages", num: true }],
        t.queue_offsets.map((q) => [q.queue_id, num(q.min), num(q.max), num(q.max - q.min)]),
      ),
    );
  };
  show(topic);
  return poll(async () => show(await get(`/v1/topics/${enc(name)}`)), 3000);
}

function publishForm(topic) {
  const body = field("Body", { name: "body", rows: 3 }, { tag: "textarea" });
  const tag = field("Tag", { name: "tag", autocomplete: "off" }, { small: true });
  const keys = field("Keys (comma-separated)", { name: "keys", autocomplete: "off" });
  const props = field("Properties (one name=value a line)", { name: "properties", rows: 2 }, { tag: "textarea" });
  const result = h("p", { class: "result", "aria-live": "polite" });
  return h(
    "form",
    { class: "panel", "aria-labelledby": "publish-title", onsubmit: (e) => e.preventDefault() },
    h("h2", { id: "publish-title" }, "Publish a test message"),
    body.wrap,
    h("div", { class: "row" }, tag.wrap, keys.wrap),
    props.wrap,
    actionButton(
      "Publish",
      "publish",
      `topic:${topic}`,
      async () => {
        const message = { body: body.input.value };
        if (tag.input.value.trim()) message.tag = tag.input.value.trim();
        const k = keys.input.value.split(",").map((x) => x.trim()).filter(Boolean);
        if (k.length) message.keys = k;
        const properties = {};
        for (const line of props.input.value.split("\n")) {
          const at = line.indexOf("=");
          if (at > 0) properties[line.slice(0, at).trim()] = line.slice(at + 1).trim();
        }
        if (Object.keys(properties).length) message.properties = properties;
        const sent = await post(`/v1/topics/${enc(topic)}/messages`, message);
        replace(result, "Published ", link(`/messages/${enc(sent.msg_id)}`, sent.msg_id), ` to queue ${sent.queue_id} at offset ${sent.queue_offset}.`);
      },
      { type: "submit" },
    ),
    result,
  );
}
