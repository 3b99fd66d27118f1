// Small inline-SVG charts for the release page: no library, no inline
// styles (the CSP forbids them; colours come from classes in style.css).
// Every chart is an <svg role="img"> with a <title> and <desc>, followed by
// a table with the same numbers, for screen readers and for anyone who
// wants the exact values.

const NS = "http://www.w3.org/2000/svg";
let uid = 0;

function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  for (const c of children.flat(Infinity)) if (c !== undefined && c !== null) el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return el;
}

// The drawing area in viewBox units; the SVG scales to its box's width, so
// the same chart reads on a laptop and on a 390 px phone.
const W = 600, H = 180, L = 58, R = 12, T = 12, B = 28;

function fmt(n) {
  if (!Number.isFinite(n)) return String(n);
  const a = Math.abs(n);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return n.toExponential(2);
  return String(Math.round(n * 1000) / 1000);
}

function clock(t) {
  return t.toISOString().slice(11, 19);
}

// chart draws points (x: Date, y: number) on a time axis.
//   title, desc   accessible name and description
//   yMin, yMax    the axis (widened to the data and the band)
//   band          {lo, hi}: the accepted range, shaded (either may be absent)
//   step          draw the line as steps (a weight holds until the next step)
//   bad(p)        marks a point as failing
//   columns       the table alternative's headers: [time, value, ...extra]
//   row(p)        the table alternative's cells for a point
export function chart({ title, desc, points, yMin, yMax, band, step, bad, unit = "", columns, row, id }) {
  const n = ++uid;
  const ys = points.map((p) => p.y).filter(Number.isFinite);
  let lo = Math.min(yMin ?? Infinity, ...ys, band?.lo ?? Infinity);
  let hi = Math.max(yMax ?? -Infinity, ...ys, band?.hi ?? -Infinity);
  if (!Number.isFinite(lo)) lo = 0;
  if (!Number.isFinite(hi)) hi = lo + 1;
  if (hi === lo) { hi += Math.abs(hi) * 0.1 || 1; lo -= Math.abs(lo) * 0.1 || 0; }
  const ts = points.map((p) => p.x.getTime());
  let t0 = Math.min(...ts), t1 = Math.max(...ts);
  if (!Number.isFinite(t0)) t0 = t1 = Date.now();
  if (t1 === t0) { t0 -= 30000; t1 += 30000; }
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);

  const g = [];
  // The accepted range: shaded from its bounds (or the axis ends).
  if (band && (band.lo !== undefined || band.hi !== undefined)) {
    const top = y(band.hi ?? hi), bottom = y(band.lo ?? lo);
    g.push(s("rect", { class: "band", x: L, y: top, width: W - L - R, height: Math.max(0, bottom - top) }));
    for (const v of [band.lo, band.hi]) if (v !== undefined) g.push(s("line", { class: "band-edge", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
  }
  // Axes with the ends labelled: enough to read a value's place.
  g.push(s("line", { class: "axis", x1: L, x2: L, y1: T, y2: H - B }), s("line", { class: "axis", x1: L, x2: W - R, y1: H - B, y2: H - B }));
  for (const v of [lo, (lo + hi) / 2, hi]) {
    g.push(s("text", { class: "tick", x: L - 4, y: y(v) + 4, "text-anchor": "end" }, fmt(v) + unit));
    g.push(s("line", { class: "grid", x1: L, x2: W - R, y1: y(v), y2: y(v) }));
  }
  g.push(s("text", { class: "tick", x: L, y: H - 8, "text-anchor": "start" }, clock(new Date(t0))));
  g.push(s("text", { class: "tick", x: W - R, y: H - 8, "text-anchor": "end" }, clock(new Date(t1))));
  const drawn = points.filter((p) => Number.isFinite(p.y));
  if (drawn.length > 1) {
    let d = "";
    drawn.forEach((p, i) => {
      const px = x(p.x.getTime()), py = y(p.y);
      if (i === 0) d += `M${px},${py}`;
      else d += step ? `H${px}V${py}` : `L${px},${py}`;
    });
    g.push(s("path", { class: "line", d }));
  }
  for (const p of drawn) {
    g.push(s("circle", { class: bad?.(p) ? "point bad" : "point", cx: x(p.x.getTime()), cy: y(p.y), r: 4 },
      s("title", {}, `${clock(p.x)}: ${fmt(p.y)}${unit}${bad?.(p) ? " (outside the accepted range)" : ""}`)));
  }
  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img", "aria-labelledby": `ct${n} cd${n}`, preserveAspectRatio: "xMidYMid meet" },
    s("title", { id: `ct${n}` }, title), s("desc", { id: `cd${n}` }, desc), g);
  const table = h("table", {}, h("caption", {}, `${title}: values`),
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, points.map((p) => h("tr", {}, row(p).map((c, i) => (i === 0 ? h("th", { scope: "row" }, c) : h("td", {}, c)))))));
  return h("figure", { class: "chart-box", id },
    h("figcaption", {}, title), svg,
    h("details", {}, h("summary", {}, "Values as a table"), h("div", { class: "table-wrap" }, table)));
}

// split draws the traffic split as one stacked bar.
export function split({ primary, canary, baseline = 0, mirrored }) {
  const n = ++uid;
  const parts = [["primary", primary], ["canary", canary], ["baseline", baseline]].filter(([, v]) => v > 0);
  let at = 0;
  const bars = parts.map(([name, v]) => {
    const r = s("rect", { class: `split-${name}`, x: at * 6, y: 0, width: v * 6, height: 28 }, s("title", {}, `${name} ${v}%`));
    const label = v >= 12 ? s("text", { class: "split-label", x: at * 6 + 6, y: 19 }, `${name} ${v}%`) : null;
    at += v;
    return [r, label];
  });
  const text = parts.map(([name, v]) => `${name} ${v}%`).join(", ") + (mirrored ? "; the canary also receives a mirror of the primary's traffic" : "");
  return h("figure", { class: "chart-box" },
    h("figcaption", {}, "Traffic split"),
    s("svg", { viewBox: "0 0 600 28", class: "split", role: "img", "aria-labelledby": `st${n}` }, s("title", { id: `st${n}` }, `Traffic split: ${text}`), bars),
    h("p", { class: "muted", id: "traffic-split" }, text));
}
