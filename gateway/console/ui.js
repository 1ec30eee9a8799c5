// Shared pieces of the views: the notice line (errors shown plainly, 403s included), buttons
// for actions a token may not be granted, and polling that stops when the view is left.

import { ApiError, deny, may, session } from "./api.js";
import { h, replace } from "./dom.js";

const ACTION_NAMES = { admin: "admin", publish: "publish", consume: "consume" };

/** Shows `message` (a string or an error) in the notice line; errors are announced. */
export function notify(message, kind = "error") {
  const box = document.getElementById("notice");
  const text = message instanceof ApiError ? message.plain : message instanceof Error ? message.message : String(message);
  box.dataset.kind = kind;
  replace(
    box,
    h("span", { class: "text" }, text),
    h("button", { type: "button", class: "secondary", onclick: clearNotice, "aria-label": "Dismiss message" }, "Dismiss"),
  );
  box.hidden = false;
}

export function clearNotice() {
  const box = document.getElementById("notice");
  box.hidden = true;
  box.replaceChildren();
}

const gated = new Set();

/** Re-checks every action button on the page (after a 403 or a new token). */
function refreshGated() {
  for (const entry of [...gated]) {
    if (!entry.button.isConnected) {
      gated.delete(entry);
      continue;
    }
    apply(entry);
  }
}
session.listeners.add(refreshGated);

function apply({ button, note, action, target }) {
  const allowed = may(action, target);
  button.disabled = !allowed || button.dataset.busy === "1";
  button.dataset.denied = allowed ? "" : "1";
  note.hidden = allowed;
}

/**
 * A button for an action the token may not be granted. It starts disabled when the grant is
 * known to be missing; a 403 while it runs is shown and disables it from then on.
 * `run` may return a string to show as information.
 */
export function actionButton(label, action, target, run, attrs = {}) {
  const noteId = `deny-${Math.random().toString(36).slice(2, 10)}`;
  const note = h("span", { class: "denied", id: noteId, hidden: true }, `Your token is not granted ${ACTION_NAMES[action]} here.`);
  const button = h("button", { type: attrs.type ?? "button", class: attrs.class, "aria-describedby": noteId, dataset: { action } }, label);
  const entry = { button, note, action, target };
  gated.add(entry);
  button.addEventListener("click", async (event) => {
    if (attrs.type === "submit") event.preventDefault();
    if (button.disabled) return;
    button.dataset.busy = "1";
    button.disabled = true;
    try {
      const info = await run(event);
      if (typeof info === "string") notify(info, "info");
      else clearNotice();
    } catch (err) {
      if (err instanceof ApiError && err.status === 403) deny(action, target);
      notify(err);
    } finally {
      button.dataset.busy = "";
      apply(entry);
    }
  });
  apply(entry);
  return h("span", { class: "actions" }, button, note);
}

/** Runs `task` now and every `ms` until `stop()` is called; errors go to the notice line once. */
export function poll(task, ms) {
  let timer = null;
  let stopped = false;
  let failing = false;
  const tick = async () => {
    try {
      await task();
      if (failing) clearNotice();
      failing = false;
    } catch (err) {
      if (!failing) notify(err);
      failing = true;
    }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

/** Runs an async form handler, showing its error plainly. */
export function guard(run) {
  return async (event) => {
    event?.preventDefault?.();
    try {
      await run(event);
    } catch (err) {
      notify(err);
    }
  };
}
