// Small DOM helpers. Every piece of data goes in as text (never as HTML), so a message body or
// a topic name cannot inject markup.

/** Creates an element: `h("a", { href: "#/" }, "text", child)`. `on*` attributes take listeners. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") el.addEventListener(name.slice(2), value);
    else if (name === "class") el.className = value;
    else if (name === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(name, "");
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** A table inside a scrolling wrapper; `columns` are `{ title, num?, narrow? }`, rows arrays of cells. */
export function table(caption, columns, rows, empty = "Nothing yet.") {
  if (rows.length === 0) return h("p", { class: "empty" }, empty);
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      {},
      h("caption", { class: "visually-hidden" }, caption),
      h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col", class: cls(c) }, c.title)))),
      h(
        "tbody",
        {},
        rows.map((cells) => h("tr", {}, cells.map((cell, i) => h("td", { class: cls(columns[i]) }, cell)))),
      ),
    ),
  );
}

function cls(column) {
  return [column.num ? "num" : "", column.narrow ? "hide-narrow" : "", column.class ?? ""].join(" ").trim() || undefined;
}

let fieldCounter = 0;

/** A labelled input; returns `{ wrap, input }`. */
export function field(label, attrs = {}, { small = false, tag = "input" } = {}) {
  const id = attrs.id ?? `f${++fieldCounter}`;
  const input = tag === "select" ? h("select", { ...attrs, id }, attrs.options ?? []) : h(tag, { type: tag === "input" ? "text" : undefined, ...attrs, id });
  if (tag === "select") input.removeAttribute("options");
  const wrap = h("div", { class: small ? "field small" : "field" }, h("label", { for: id }, label), input);
  return { wrap, input };
}

/** `1234567` → `1,234,567`. */
export function num(n) {
  return n === null || n === undefined || Number.isNaN(n) ? "–" : Number(n).toLocaleString("en-US", { maximumFractionDigits: 1 });
}

/** Epoch ms → a local date and time. */
export function time(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

/** A `#/` link. */
export function link(path, text) {
  return h("a", { href: "#" + path }, text);
}

/** `/a/b` path segment encoding for hash links and API paths. */
export function enc(s) {
  return encodeURIComponent(s);
}
