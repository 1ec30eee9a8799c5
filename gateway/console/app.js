// The console's shell: hash routing, the sign-in form when the server has an auth_file, and the
// session line in the header. Views live in ./views/, one module each; a view renders into
// <main> and may return a function that stops its timers or socket when it is left.

import { probe, session, setToken, token, ApiError } from "./api.js";
import { h, replace } from "./dom.js";
import { clearNotice, notify } from "./ui.js";
import * as overview from "./views/overview.js";
import * as topics from "./views/topics.js";
import * as group from "./views/group.js";
import * as messages from "./views/messages.js";
import * as dlq from "./views/dlq.js";
import * as tail from "./views/tail.js";

/** `[pattern, view module, nav key]`; the first match wins. Captures are URI-decoded. */
const ROUTES = [
  [/^\/?$/, overview, "overview"],
  [/^\/topics$/, topics, "topics"],
  [/^\/topics\/([^/]+)$/, topics, "topics"],
  [/^\/groups$/, group, "groups"],
  [/^\/groups\/([^/]+)$/, group, "groups"],
  [/^\/groups\/([^/]+)\/dlq$/, dlq, "groups"],
  [/^\/messages$/, messages, "messages"],
  [/^\/messages\/([^/]+)$/, messages, "messages"],
  [/^\/tail$/, tail, "tail"],
  [/^\/tail\/([^/]+)$/, tail, "tail"],
];

const main = document.getElementById("main");
let leave = null;
let ready = false;
let visits = 0;

function parseHash() {
  const raw = location.hash.replace(/^#/, "") || "/";
  const [path, query = ""] = raw.split("?");
  return { path, query: new URLSearchParams(query) };
}

async function route() {
  if (leave) {
    leave();
    leave = null;
  }
  if (!ready) return;
  const { path, query } = parseHash();
  const match = ROUTES.map(([re, view, nav]) => [re.exec(path), view, nav]).find(([m]) => m);
  for (const a of document.querySelectorAll("[data-nav]")) {
    if (match && a.dataset.nav === match[2]) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  replace(main);
  if (!match) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No view at ", h("code", {}, path), ". ", h("a", { href: "#/" }, "Back to the overview")));
    return;
  }
  const [m, view] = match;
  const params = m.slice(1).map((p) => decodeURIComponent(p));
  const visit = ++visits;
  try {
    const stop = (await view.render(main, params, query)) ?? null;
    // The hash may have changed while the view was loading: then it is already left.
    if (visit === visits) leave = stop;
    else stop?.();
  } catch (err) {
    replace(main, h("h1", {}, "Cannot show this view"), h("p", { class: "denied" }, err instanceof ApiError ? err.plain : String(err)));
    if (err instanceof ApiError && err.status === 401) await // The skip link moves focus without touching the hash, which routes.
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
start();
  }
  main.querySelector("h1")?.setAttribute("tabindex", "-1");
}

function renderSession() {
  const box = document.getElementById("session");
  const parts = [];
  if (session.authRequired && token()) {
    const role = session.admin === true ? "admin granted" : session.admin === false ? "no admin grant" : "";
    parts.push(h("span", {}, "Signed in", role ? ` · ${role}` : ""));
    parts.push(h("button", { type: "button", class: "secondary", onclick: signOut }, "Sign out"));
  } else if (!session.authRequired && ready) {
    parts.push(h("span", {}, "No auth on this server"));
  }
  replace(box, parts);
}
session.listeners.add(renderSession);

function signOut() {
  setToken(null);
  // The skip link moves focus without touching the hash, which routes.
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
start();
}

function loginForm(problem) {
  const input = h("input", { id: "token", name: "token", type: "password", autocomplete: "off", required: true, spellcheck: "false" });
  const form = h(
    "form",
    { class: "panel", "aria-labelledby": "login-title" },
    h("h1", { id: "login-title" }, "Sign in"),
    h("p", {}, "This server has an auth_file: enter an access token. It is kept in this tab's session storage only and sent as a bearer token."),
    problem ? h("p", { class: "denied", role: "alert" }, problem) : null,
    h("div", { class: "row" }, h("div", { class: "field" }, h("label", { for: "token" }, "Access token"), input)),
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    setToken(input.value.trim());
    // The skip link moves focus without touching the hash, which routes.
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
start();
  });
  replace(main, form);
  input.focus();
}

async function start() {
  ready = false;
  if (leave) {
    leave();
    leave = null;
  }
  clearNotice();
  let state;
  try {
    state = await probe();
  } catch (err) {
    replace(main, h("h1", {}, "The server did not answer"), h("p", { class: "denied" }, err instanceof ApiError ? err.plain : String(err)));
    return;
  }
  if (state !== "ok") {
    if (state === "bad-token") setToken(null);
    renderSession();
    loginForm(state === "bad-token" ? "401 Unauthorized: the token is not valid." : null);
    return;
  }
  ready = true;
  renderSession();
  await route();
}

window.addEventListener("hashchange", () => {
  clearNotice();
  route().then(() => main.querySelector("h1")?.focus({ preventScroll: true }));
});
// The skip link moves focus without touching the hash, which routes.
document.querySelector("[data-skip]").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});
start();
