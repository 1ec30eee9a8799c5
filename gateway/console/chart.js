// A small line chart in inline SVG: one line per series over a shared time axis. No library;
// the numbers are also shown in a table next to it, so the chart is an aid, not the only view.

import { h } from "./dom.js";

const NS = "http://www.w3.org/2000/svg";
export const COLORS = ["#0b5cad", "#d1242f", "#1a7f37", "#9a6700", "#8250df", "#bf3989", "#1b7c83", "#57606a"];

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  for (const c of children) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

/**
 * `series`: `[{ label, points: [[t_ms, value], ...] }]`; `windowMs`: the time span shown, ending now.
 * `width`: the pixels available, so that the drawing is 1:1 (text keeps its size at any width).
 * Returns a figure with the SVG and a legend.
 */
export function lineChart(title, series, windowMs, now = Date.now(), width = 600) {
  const W = Math.max(240, Math.round(width));
  const H = 180;
  const pad = { l: 44, r: 10, t: 10, b: 22 };
  const max = Math.max(1, ...series.flatMap((x) => x.points.map((p) => p[1])));
  const x = (t) => pad.l + ((t - (now - windowMs)) / windowMs) * (W - pad.l - pad.r);
  const y = (v) => H - pad.b - (v / max) * (H - pad.t - pad.b);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": title });
  svg.append(s("title", {}, title));
  for (const frac of [0, 0.5, 1]) {
    const v = max * frac;
    svg.append(s("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), stroke: "#d0d7de", "stroke-width": 1 }));
    svg.append(s("text", { x: pad.l - 6, y: y(v) + 4, "text-anchor": "end" }, Math.round(v)));
  }
  const minutes = Math.round(windowMs / 60000);
  svg.append(s("text", { x: pad.l, y: H - 6 }, `−${minutes} min`));
  svg.append(s("text", { x: W - pad.r, y: H - 6, "text-anchor": "end" }, "now"));
  series.forEach((one, i) => {
    const pts = one.points.filter((p) => p[0] >= now - windowMs);
    if (pts.length === 0) return;
    const d = pts.map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    const color = COLORS[i % COLORS.length];
    if (pts.length === 1) svg.append(s("circle", { cx: x(pts[0][0]), cy: y(pts[0][1]), r: 3, fill: color }));
    else svg.append(s("polyline", { points: d, fill: "none", stroke: color, "stroke-width": 2, "vector-effect": "non-scaling-stroke" }));
  });
  const legend = h(
    "ul",
    { class: "legend", "aria-hidden": "true" },
    series.map((one, i) => {
      // A CSSOM property, not a style attribute: the page's CSP allows no inline styles.
      const swatch = h("i");
      swatch.style.background = COLORS[i % COLORS.length];
      return h("li", {}, swatch, one.label);
    }),
  );
  return h("figure", { class: "chart-figure" }, svg, legend);
}
