// The console's only way to the broker: the public REST API (fetch) and the WebSocket protocol
// (/v1/ws with a single-use ticket). The token lives in sessionStorage, so it is gone when the
// tab closes, and is sent as `Authorization: Bearer`.
//
// What a token may do: the API has no endpoint that lists a token's grants, but `GET /metrics`
// needs the `admin` action (and no particular topic or group), so its status tells whether the
// token holds `admin` at all. Admin actions are disabled when it does not. Everything else (a
// `publish` grant, or admin limited to some topics or groups) is learned from the first 403,
// which is shown and disables that action for that target.

const TOKEN_KEY = "ferrymq.console.token";

/** An HTTP answer that was not 2xx, with its problem document. */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }

  /** A plain sentence: `403 Forbidden: the token is not granted admin on group "g"`. */
  get plain() {
    const title = this.problem.title || statusText(this.status);
    const detail = this.problem.detail && this.problem.detail !== title ? `: ${this.problem.detail}` : "";
    const fields = (this.problem.errors ?? []).map((e) => ` (${e.field}: ${e.message})`).join("");
    return `${this.status} ${title}${detail}${fields}`;
  }
}

function statusText(status) {
  return { 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 409: "Conflict" }[status] ?? "Error";
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** What the console knows of its caller. `admin`: true, false, or null (not known yet). */
export const session = {
  authRequired: false,
  admin: null,
  /** `action target` strings answered 403, e.g. `admin group:g`. */
  denied: new Set(),
  listeners: new Set(),
};

function changed() {
  for (const listener of session.listeners) listener();
}

/** Records a 403 for `action` on `target` (e.g. `group:g`) so its controls stay disabled. */
export function deny(action, target) {
  session.denied.add(`${action} ${target ?? "*"}`);
  changed();
}

/** Whether the console should offer `action` on `target`: false once it is known to be denied. */
export function may(action, target) {
  if (action === "admin" && session.admin === false) return false;
  return !session.denied.has(`${action} ${target ?? "*"}`) && !session.denied.has(`${action} *`);
}

/** Calls the API; resolves to the parsed JSON (or text for non-JSON, null for 204). */
export async function request(method, path, body, { accept = "application/json" } = {}) {
  const headers = { accept };
  const t = token();
  if (t) headers.authorization = `Bearer ${t}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (err) {
    throw new ApiError(0, { title: "Network error", detail: `the server did not answer (${err.message})` });
  }
  if (response.status === 204) return null;
  const type = response.headers.get("content-type") ?? "";
  const text = await response.text();
  const data = type.includes("json") && text ? JSON.parse(text) : text;
  if (!response.ok) throw new ApiError(response.status, typeof data === "object" ? data : { detail: text });
  return data;
}

export const get = (path) => request("GET", path);
export const post = (path, body) => request("POST", path, body ?? {});
export const put = (path, body) => request("PUT", path, body ?? {});
export const del = (path) => request("DELETE", path);

/**
 * Finds out whether a token is needed and valid, and whether it holds `admin`. Resolves to
 * `"ok"`, `"login"` (a token is needed) or `"bad-token"`; keeps the metrics text it read.
 */
export async function probe() {
  session.admin = null;
  session.denied.clear();
  try {
    await get("/v1/topics");
  } catch (err) {
    if (err.status === 401) {
      session.authRequired = true;
      changed();
      return token() ? "bad-token" : "login";
    }
    if (err.status !== 403) throw err;
    // 403 on the topic list: the token lacks `consume`; it may still do other things.
  }
  session.authRequired = session.authRequired || Boolean(token());
  try {
    await request("GET", "/metrics", undefined, { accept: "text/plain" });
    session.admin = true;
  } catch (err) {
    if (err.status === 403) session.admin = false;
    else throw err;
  }
  changed();
  return "ok";
}

/** Opens `/v1/ws` with a fresh ticket (`POST /v1/ws/tickets`), so no token goes in a URL. */
export async function openSocket() {
  const { ticket } = await post("/v1/ws/tickets");
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return new WebSocket(`${scheme}//${location.host}/v1/ws?ticket=${encodeURIComponent(ticket)}`);
}

/** Parses the Prometheus text format into `[{ name, labels, value }]`. */
export function parseMetrics(text) {
  const samples = [];
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of (m[3] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === "n" ? "\n" : c));
    samples.push({ name: m[1], labels, value: Number(m[4]) });
  }
  return samples;
}
