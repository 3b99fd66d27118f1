// The release page's charts and the commit, GitSync health and delivery
// views. Built with DOM calls only: cluster data is always text.

import { chart, h, split } from "./charts.js";

const hex = /^[0-9a-f]{7,64}$/;

// commitLink shows a SHA, linked to its page when the Git host is known
// (the server builds the prefix: see commitlink.go).
export function commitLink(sha, prefix, id) {
  if (!sha) return null;
  const code = h("code", {}, sha.slice(0, 12));
  if (!prefix || !hex.test(sha) || !/^https?:\/\//.test(prefix)) return h("span", { id, class: "commit" }, code);
  return h("a", { id, class: "commit", href: prefix + sha, target: "_blank", rel: "noopener noreferrer", title: `Commit ${sha}` }, code);
}

const num = (v) => (v === undefined || v === null || v === "" ? NaN : Number(v));

function inBand(y, t) {
  if (!t) return true;
  return (t.min === undefined || t.min === null || y >= t.min) && (t.max === undefined || t.max === null || y <= t.max);
}

// weightChart is the timeline of the canary weight and phase, one point per
// analysis step (status.history, newest last) and the weight now.
function weightChart(v) {
  const points = (v.history || []).map((st) => ({ x: new Date(st.time), y: st.weight ?? 0, phase: st.phase, msg: st.message || "" }));
  const last = points[points.length - 1];
  if (!last || last.y !== v.weight || last.phase !== v.phase) points.push({ x: new Date(), y: v.weight, phase: v.phase, msg: "now" });
  const phases = [...new Set(points.map((p) => p.phase))].join(" → ");
  return chart({
    id: "weight-chart", title: "Canary weight over the release", unit: "%", yMin: 0, yMax: 100,
    desc: `Canary weight at each analysis step, from ${points[0].y}% to ${v.weight}% now; phases ${phases}.`,
    points, step: true, bad: (p) => p.phase === "Failed",
    columns: ["Time", "Weight", "Phase", "Message"],
    row: (p) => [p.x.toISOString().replace("T", " ").slice(0, 19), `${p.y}%`, p.phase, p.msg],
  });
}

// metricCharts draws, for every metric checked in the kept steps, its value
// at each step against the accepted range (spec.analysis.metrics[].thresholdRange).
function metricCharts(v) {
  const byName = new Map();
  for (const st of v.history || []) {
    for (const c of st.checks || []) {
      if (c.kind !== "metric") continue;
      if (!byName.has(c.name)) byName.set(c.name, []);
      byName.get(c.name).push({ x: new Date(st.time), y: num(c.value), raw: c.value, outcome: c.outcome, weight: st.weight ?? 0, msg: c.message || "" });
    }
  }
  if (!byName.size) return [h("p", { class: "muted" }, "No metric was checked in the kept steps.")];
  return [...byName].map(([name, points]) => {
    const t = v.thresholds?.[name];
    const band = t ? { lo: t.min ?? undefined, hi: t.max ?? undefined } : undefined;
    const range = t ? `[${t.min ?? "−∞"}, ${t.max ?? "+∞"}]` : "no threshold range";
    const failed = points.filter((p) => p.outcome === "Failed" || (Number.isFinite(p.y) && !inBand(p.y, t))).length;
    return chart({
      id: `metric-${name}`, title: `Metric ${name}`, band,
      desc: `${points.length} values of ${name} against the accepted range ${range}; ${failed} outside it or failed. The latest is ${points[points.length - 1].raw ?? "no data"}.`,
      points, bad: (p) => p.outcome === "Failed" || !inBand(p.y, t),
      columns: ["Time", "Value", "Accepted range", "Outcome", "Weight"],
      row: (p) => [p.x.toISOString().replace("T", " ").slice(0, 19), p.raw ?? "no data", range, p.outcome || "—", `${p.weight}%`],
    });
  });
}

// comparisonTable lists the samples of statistically compared metrics.
function comparisonTable(samples) {
  if (!samples?.length) return null;
  return h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, "Compared metrics: canary against the compared side, per step"),
    h("thead", {}, h("tr", {}, ["Metric", "Canary", "Compared"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, samples.map((m) => h("tr", {}, h("th", { scope: "row" }, m.name), h("td", {}, (m.canary || []).join(", ")), h("td", {}, (m.compared || []).join(", ")))))));
}

// startedBy says which commit started the release.
function startedBy(rel) {
  const c = rel?.commit;
  if (!c) return h("p", { class: "muted", id: "release-commit" }, "This release was not started by a GitSync revision (or its source is not recorded).");
  return h("dl", { class: "facts", id: "release-commit" },
    h("dt", {}, "Commit"), h("dd", {}, c.sha ? commitLink(c.sha, c.url ? c.url.slice(0, -c.sha.length) : "", "release-commit-link") : h("code", {}, c.revision)),
    h("dt", {}, "Message"), h("dd", { id: "release-commit-subject" }, c.subject ? `${c.subject}${c.author ? ` (${c.author})` : ""}` : "— (known while the GitSync's last applied revision is this one)"),
    h("dt", {}, "Revision"), h("dd", {}, h("code", {}, c.revision)),
    h("dt", {}, "GitSync"), h("dd", {}, h("a", { href: `#/gitsync/${c.gitSync.split("/").map(encodeURIComponent).join("/")}` }, c.gitSync)),
    h("dt", {}, "Repository"), h("dd", {}, c.repository ? h("code", {}, c.repository) : c.note || "—"),
    h("dt", {}, "Committed"), h("dd", {}, c.commitTime ? new Date(c.commitTime).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—"));
}

// releaseSections are the release page's charts, split and commit.
export function releaseSections(v, rel) {
  return [
    h("section", { "aria-labelledby": "s-commit" }, h("h2", { id: "s-commit" }, "Started by"), startedBy(rel)),
    h("section", { "aria-labelledby": "s-traffic" }, h("h2", { id: "s-traffic" }, "Traffic"),
      split(rel?.traffic || { primary: 100 - v.weight, canary: v.weight }), weightChart(v)),
    h("section", { "aria-labelledby": "s-metrics" }, h("h2", { id: "s-metrics" }, "Metrics against their thresholds"),
      h("div", { class: "charts" }, metricCharts(v)), comparisonTable(rel?.comparisonSamples)),
  ];
}

// healthTable is a GitSync's inventory with each object's health.
export function healthTable(d) {
  const v = d.object;
  if (!v.inventory?.length) return h("p", { class: "muted" }, "Nothing applied yet.");
  const health = new Map((d.health || []).map((o) => [`${o.group || ""}/${o.kind}/${o.namespace || ""}/${o.name}`, o]));
  const counts = {};
  for (const o of d.health || []) counts[o.status] = (counts[o.status] || 0) + 1;
  const summary = Object.entries(counts).map(([k, n]) => `${n} ${k}`).join(", ");
  return h("div", {},
    h("p", { id: "health-summary" }, summary ? `Health: ${summary}` : "Health not checked."),
    d.healthError ? h("p", { class: "muted" }, d.healthError) : null,
    h("div", { class: "table-wrap" }, h("table", { id: "inventory" }, h("caption", {}, `Inventory (${v.inventory.length} objects) and health`),
      h("thead", {}, h("tr", {}, ["Kind", "Namespace", "Name", "Health", "Message"].map((c, i) => h("th", { scope: "col", class: i === 4 ? "hide-narrow" : undefined }, c)))),
      h("tbody", {}, v.inventory.map((o) => {
        const st = health.get(`${o.group || ""}/${o.kind}/${o.namespace || ""}/${o.name}`);
        return h("tr", { "data-object": `${o.kind}/${o.namespace || ""}/${o.name}` }, h("td", {}, o.kind), h("td", {}, o.namespace || "—"),
          h("th", { scope: "row" }, o.name), h("td", { class: `health health-${st?.status || "Unchecked"}` }, st?.status || "not checked"),
          h("td", { class: "hide-narrow" }, st?.message || ""));
      })))));
}

// driftTable lists the drift corrections among a GitSync's events.
export function driftTable(d) {
  if (d.eventsError) return h("p", { class: "denied" }, `Drift corrections: ${d.eventsError}`);
  const drift = (d.events || []).filter((e) => e.reason === "DriftCorrected");
  if (!drift.length) return h("p", { class: "muted", id: "drift" }, "No drift corrected recently (events are kept for an hour by default).");
  const total = drift.reduce((n, e) => n + (e.count || 1), 0);
  return h("div", { class: "table-wrap", id: "drift" }, h("table", {}, h("caption", {}, `Drift corrections (${total}): objects changed outside Git and put back`),
    h("thead", {}, h("tr", {}, ["When", "Count", "What"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, drift.map((e) => h("tr", {}, h("td", {}, e.last.replace("T", " ").replace("Z", "")), h("td", { class: "num" }, e.count), h("td", {}, e.message))))));
}

const secs = (s) => {
  if (s === undefined || s === null) return "—";
  s = Math.round(s);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d${Math.floor((s % 86400) / 3600)}h`;
};
const pct = (r) => (r === undefined || r === null ? "—" : `${Math.round(r * 1000) / 10}%`);

// deliveryTable shows the figures of `kubectl sluice report` per Canary.
export function deliveryTable(rep) {
  const row = (ns, name, f, total) => h("tr", { class: total ? "total" : undefined, "data-canary": total ? undefined : `${ns}/${name}` },
    h("th", { scope: "row" }, total ? "All" : h("a", { href: `#/canary/${encodeURIComponent(ns)}/${encodeURIComponent(name)}` }, `${ns}/${name}`)),
    h("td", { class: "num" }, f.deployments), h("td", { class: "num" }, f.deploymentsPerDay),
    h("td", { class: "num" }, secs(f.leadTimeSeconds?.median)), h("td", { class: "num hide-narrow" }, secs(f.leadTimeSeconds?.p90)),
    h("td", { class: "num" }, pct(f.changeFailureRate)), h("td", { class: "num" }, secs(f.meanTimeToRestoreSeconds)),
    h("td", { class: "num hide-narrow" }, `${f.releasesStarted} / ${f.rollbacks}`));
  return h("div", { class: "table-wrap" }, h("table", { id: "delivery" },
    h("caption", {}, `Delivery over the last ${rep.since} (from each Canary's status.delivery: at most its last 32 releases)`),
    h("thead", {}, h("tr", {}, ["Application", "Deployments", "Per day", "Lead time p50", "Lead time p90", "Change failure rate", "Time to restore", "Started / rolled back"]
      .map((c, i) => h("th", { scope: "col", class: i === 4 || i === 7 ? "hide-narrow" : undefined }, c)))),
    h("tbody", {}, rep.canaries.map((c) => row(c.namespace, c.name, c)), row("", "", rep.total, true))));
}
