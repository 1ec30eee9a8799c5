// The dead letters of a group (`%DLQ%<group>`): list them, open one, re-send one or all back
// to their topics (they come back with reconsume_times 0).

import { get, post } from "../api.js";
import { enc, h, link, replace, table, time } from "../dom.js";
import { actionButton, guard } from "../ui.js";
import { messageDetail, preview } from "./messages.js";

export async function render(main, params) {
  const group = params[0];
  const list = h("div");
  const detail = h("div");
  const count = h("p", { class: "hint", "aria-live": "polite" });

  const load = async () => {
    const { messages } = await get(`/v1/groups/${enc(group)}/dlq`);
    count.textContent = `${messages.length} dead letter${messages.length === 1 ? "" : "s"}.`;
    replace(
      list,
      messages.length > 0
        ? h(
            "div",
            { class: "actions" },
            actionButton("Resend all", "admin", `group:${group}`, async () => {
              let sent = 0;
              for (const m of messages) {
                await post(`/v1/groups/${enc(group)}/dlq/${enc(m.msg_id)}/resend`);
                sent += 1;
              }
              await load();
              return `Re-sent ${sent} message${sent === 1 ? "" : "s"} to their topics.`;
            }),
          )
        : null,
      table(
        "Dead letters",
        [{ title: "Id" }, { title: "Topic" }, { title: "Tag", narrow: true }, { title: "Keys" }, { title: "Retries", num: true, narrow: true }, { title: "Stored", narrow: true }, { title: "Body" }, { title: "Action" }],
        messages.map((m) => [
          h("button", { type: "button", class: "secondary mono", onclick: () => replace(detail, h("h2", {}, "Dead letter ", h("code", {}, m.msg_id)), messageDetail(m, { state: "dead" })) }, m.msg_id),
          m.topic,
          m.tag ?? "",
          m.keys.join(", "),
          m.reconsume_times,
          time(m.store_ts),
          preview(m),
          actionButton("Resend", "admin", `group:${group}`, async () => {
            const result = await post(`/v1/groups/${enc(group)}/dlq/${enc(m.msg_id)}/resend`);
            await load();
            return `Re-sent ${result.msg_id} to ${m.topic} (queue ${result.queue_id}, offset ${result.queue_offset}).`;
          }),
        ]),
        "The DLQ is empty.",
      ),
    );
  };

  replace(
    main,
    h("h1", {}, "Dead letters of ", h("code", {}, group)),
    h("p", { class: "actions" }, link(`/groups/${enc(group)}`, "Back to the group"), h("button", { type: "button", class: "secondary", onclick: guard(load) }, "Refresh")),
    count,
    list,
    detail,
  );
  await load();
}
