// Overview: topics, groups, messages in and out per second and total lag, refreshed every 2 s.
// Rates come from /metrics (counters) when the token may read it (admin), else from the REST
// API: the sum of the topics' max offsets (in) and of the groups' committed offsets (out).

import { get, parseMetrics, request, session } from "../api.js";
import { enc, h, link, num, replace, table } from "../dom.js";
import { poll } from "../ui.js";

const EVERY_MS = 2000;

export function render(main) {
  const cards = h("dl", { class: "cards", "aria-live": "off" });
  const source = h("p", { class: "hint" });
  const lists = h("div", { class: "grid2" });
  replace(main, h("h1", {}, "Overview"), cards, source, lists);
  let last = null;

  return poll(async () => {
    const [{ topics }, { groups }] = await Promise.all([get("/v1/topics"), get("/v1/groups")]);
    const now = performance.now();
    let totals;
    if (session.admin) {
      totals = fromMetrics(parseMetrics(await request("GET", "/metrics", undefined, { accept: "text/plain" })));
      source.textContent = "Rates and lag from /metrics, every 2 s.";
    } else {
      totals = await fromRest(topics, groups);
      source.textContent = "Rates and lag from the REST API (the token may not read /metrics), every 2 s.";
    }
    const rate = (key) => (last ? Math.max(0, (totals[key] - last[key]) / ((now - last.at) / 1000)) : null);
    const inRate = rate("in");
    const outRate = rate("out");
    last = { ...totals, at: now };
    const card = (label, value, id) => h("div", { class: "card" }, h("dt", { id }, label), h("dd", { "aria-labelledby": id, dataset: { stat: id } }, value));
    replace(
      cards,
      card("Topics", num(topics.length), "topics"),
      card("Groups", num(groups.length), "groups"),
      card("Messages in / s", inRate === null ? "…" : num(inRate), "in-rate"),
      card("Messages out / s", outRate === null ? "…" : num(outRate), "out-rate"),
      card("Total lag", num(totals.lag), "lag"),
    );
    replace(
      lists,
      h(
        "section",
        { "aria-labelledby": "ov-topics" },
        h("h2", { id: "ov-topics" }, "Topics"),
        table(
          "Topics",
          [{ title: "Topic" }, { title: "Queues", num: true }, { title: "Perm" }],
          topics.map((t) => [link(`/topics/${enc(t.name)}`, t.name), num(t.queues), t.perm]),
          "No topics yet.",
        ),
      ),
      h(
        "section",
        { "aria-labelledby": "ov-groups" },
        h("h2", { id: "ov-groups" }, "Groups"),
        table(
          "Groups",
          [{ title: "Group" }, { title: "Members", num: true }, { title: "Topics" }],
          groups.map((g) => [link(`/groups/${enc(g.group)}`, g.group), num(g.members), g.topics.join(", ")]),
          "No groups yet.",
        ),
      ),
    );
  }, EVERY_MS);
}

function fromMetrics(samples) {
  const sum = (name) => samples.filter((s) => s.name === name).reduce((a, s) => a + s.value, 0);
  return { in: sum("ferrymq_messages_in_total"), out: sum("ferrymq_messages_out_total"), lag: sum("ferrymq_consumer_lag") };
}

async function fromRest(topics, groups) {
  const [details, groupDetails] = await Promise.all([
    Promise.all(topics.map((t) => get(`/v1/topics/${enc(t.name)}`).catch(() => null))),
    Promise.all(groups.map((g) => get(`/v1/groups/${enc(g.group)}`).catch(() => null))),
  ]);
  let inTotal = 0;
  for (const d of details.filter(Boolean)) for (const q of d.queue_offsets) inTotal += q.max;
  let out = 0;
  let lag = 0;
  for (const g of groupDetails.filter(Boolean)) {
    for (const o of g.offsets) {
      out += o.committed;
      lag += o.lag;
    }
  }
  return { in: inTotal, out, lag };
}
