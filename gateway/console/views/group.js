// Groups: the list; one group with its members, subscriptions, offsets and lag per queue (a
// chart of the last minutes, sampled every 2 s while the page is open), its retry limit, and
// offset resets by time, to the earliest or to the latest message.

import { get, post, put } from "../api.js";
import { enc, field, h, link, num, replace, table, time } from "../dom.js";
import { lineChart } from "../chart.js";
import { actionButton, poll } from "../ui.js";

const EVERY_MS = 2000;
const WINDOW_MS = 5 * 60 * 1000;
/** Lag samples per group, kept while the tab lives so coming back keeps the history. */
const history = new Map();

export function render(main, params) {
  return params.length === 0 ? renderList(main) : renderGroup(main, params[0]);
}

function renderList(main) {
  const list = h("div");
  replace(main, h("h1", {}, "Groups"), list);
  return poll(async () => {
    const { groups } = await get("/v1/groups");
    replace(
      list,
      table(
        "Groups",
        [{ title: "Group" }, { title: "Members", num: true }, { title: "Topics" }],
        groups.map((g) => [link(`/groups/${enc(g.group)}`, g.group), num(g.members), g.topics.join(", ")]),
        "No groups yet: a group appears once it has received, subscribed or been configured.",
      ),
    );
  }, 3000);
}

async function renderGroup(main, name) {
  let detail = await get(`/v1/groups/${enc(name)}`);
  const summary = h("dl", { class: "cards" });
  const members = h("div");
  const subs = h("div");
  const chart = h("div");
  const offsets = h("div");
  const resetBox = h("div");

  const maxInput = field("Max reconsume times", { type: "number", min: 0, max: 10000, value: detail.max_reconsume_times, name: "max_reconsume_times" }, { small: true });
  const settings = h(
    "form",
    { class: "panel", "aria-labelledby": "settings-title", onsubmit: (e) => e.preventDefault() },
    h("h2", { id: "settings-title" }, "Settings"),
    h("div", { class: "row" }, maxInput.wrap),
    actionButton(
      "Save",
      "admin",
      `group:${name}`,
      async () => {
        await put(`/v1/groups/${enc(name)}`, { max_reconsume_times: Number(maxInput.input.value) });
        return `Saved: ${name} retries a message at most ${maxInput.input.value} times before its DLQ.`;
      },
      { type: "submit" },
    ),
  );

  replace(
    main,
    h("h1", {}, "Group ", h("code", {}, name)),
    h("p", {}, link(`/groups/${enc(name)}/dlq`, "Dead letters (DLQ)")),
    summary,
    h("div", { class: "grid2" }, h("section", {}, h("h2", {}, "Members"), members), h("section", {}, h("h2", {}, "Subscriptions"), subs)),
    h("h2", { id: "lag-title" }, "Lag per queue, last 5 minutes"),
    chart,
    h("h2", {}, "Offsets"),
    offsets,
    resetBox,
    settings,
  );

  const samples = history.get(name) ?? new Map();
  history.set(name, samples);
  let resetTopics = "";

  const show = (g) => {
    const now = Date.now();
    for (const o of g.offsets) {
      const key = `${o.topic} #${o.queue_id}`;
      const points = samples.get(key) ?? [];
      points.push([now, o.lag]);
      while (points.length && points[0][0] < now - WINDOW_MS) points.shift();
      samples.set(key, points);
    }
    const lag = g.offsets.reduce((a, o) => a + o.lag, 0);
    replace(
      summary,
      h("div", { class: "card" }, h("dt", {}, "Members"), h("dd", {}, num(g.members.length))),
      h("div", { class: "card" }, h("dt", {}, "Total lag"), h("dd", { dataset: { stat: "lag" } }, num(lag))),
      h("div", { class: "card" }, h("dt", {}, "Max reconsume times"), h("dd", {}, num(g.max_reconsume_times))),
    );
    replace(
      members,
      table(
        "Members",
        [{ title: "Client" }, { title: "Transport" }, { title: "Since", narrow: true }],
        g.members.map((m) => [h("code", {}, m.client_id), m.transport, time(m.since)]),
        "No members connected.",
      ),
    );
    replace(
      subs,
      table(
        "Subscriptions",
        [{ title: "Topic" }, { title: "Filter" }, { title: "Mode" }],
        g.subscriptions.map((s) => [link(`/topics/${enc(s.topic)}`, s.topic), h("code", {}, s.sql ?? s.filter ?? "*"), s.mode]),
        "No subscriptions.",
      ),
    );
    const series = [...samples.entries()].map(([label, points]) => ({ label, points }));
    replace(chart, series.length ? lineChart(`Lag per queue of group ${name}`, series, WINDOW_MS, now, chart.clientWidth || 600) : h("p", { class: "empty" }, "No offsets yet."));
    replace(
      offsets,
      table(
        "Offsets",
        [{ title: "Topic" }, { title: "Queue", num: true }, { title: "Committed", num: true }, { title: "Max", num: true }, { title: "Lag", num: true }],
        g.offsets.map((o) => [o.topic, o.queue_id, num(o.committed), num(o.max), num(o.lag)]),
        "No offsets yet.",
      ),
    );
    const topics = [...new Set([...g.subscriptions.map((s) => s.topic), ...g.offsets.map((o) => o.topic)])].sort();
    if (topics.join("\n") !== resetTopics) {
      resetTopics = topics.join("\n");
      replace(resetBox, resetForm(name, topics));
    }
  };
  show(detail);
  return poll(async () => {
    detail = await get(`/v1/groups/${enc(name)}`);
    show(detail);
  }, EVERY_MS);
}

function resetForm(group, topics) {
  if (topics.length === 0) return h("p", { class: "hint" }, "Offsets can be reset once the group consumes a topic.");
  const topic = field("Topic", { name: "topic", options: topics.map((t) => h("option", { value: t }, t)) }, { tag: "select" });
  const when = field("Time (local)", { name: "timestamp", type: "datetime-local", step: 1 });
  when.wrap.hidden = true;
  const choice = (value, text, checked) =>
    h(
      "label",
      { class: "radio" },
      h("input", {
        type: "radio",
        name: "to",
        value,
        checked,
        onchange: () => {
          when.wrap.hidden = value !== "timestamp";
        },
      }),
      text,
    );
  const result = h("div", { class: "result", "aria-live": "polite" });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "reset-title", onsubmit: (e) => e.preventDefault() },
    h("h2", { id: "reset-title" }, "Reset offsets"),
    h("div", { class: "row" }, topic.wrap),
    h("fieldset", {}, h("legend", {}, "Move the group to"), choice("earliest", "the earliest message", true), choice("latest", "the latest (skip everything)", false), choice("timestamp", "a time", false)),
    h("div", { class: "row" }, when.wrap),
    actionButton(
      "Reset offsets",
      "admin",
      `group:${group}`,
      async () => {
        const to = form.querySelector("input[name=to]:checked").value;
        const body = { topic: topic.input.value };
        if (to === "timestamp") {
          const ms = new Date(when.input.value).getTime();
          if (!when.input.value || Number.isNaN(ms)) {
            when.input.focus();
            throw new Error("Choose a time to reset to.");
          }
          body.timestamp = ms;
        } else body.to = to;
        const answer = await post(`/v1/groups/${enc(group)}/offsets/reset`, body);
        replace(
          result,
          h("p", {}, `Reset ${group} on ${body.topic} ${to === "timestamp" ? `to ${time(body.timestamp)}` : `to the ${to}`}:`),
          table("New offsets", [{ title: "Queue", num: true }, { title: "Offset", num: true }], answer.offsets.map((o) => [o.queue_id, num(o.offset)])),
        );
      },
      { type: "submit" },
    ),
    result,
  );
  return form;
}
