// Sluice dashboard: plain ES module, no build step, no dependencies.
// Everything is built with DOM calls (never innerHTML), so object names and
// messages from the cluster are always text, never markup.

import { commitLink, deliveryTable, driftTable, healthTable, releaseSections } from "./release.js";

const state = {
  csrf: "",
  actions: false,
  namespace: "",
  phase: "",
  objects: new Map(), // "Kind/namespace/name" -> view
  loading: new Set(), // kinds whose snapshot is arriving: drawn once, at "synced"
  denied: new Map(),  // kind -> message
  source: null,
  render: () => {},
  onUpdate: () => {},
};

const main = document.getElementById("main");
const connection = document.getElementById("connection");

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

const key = (v) => `${v.kind}/${v.namespace}/${v.name}`;
// shortRev abbreviates a commit SHA: "main@sha1:<40 hex>" becomes "main@<12 hex>".
function shortRev(r) {
  if (!r) return "—";
  const m = /^(.*?)@sha[0-9]*:([0-9a-f]{13,})$/.exec(r);
  if (m) return `${m[1]}@${m[2].slice(0, 12)}`;
  return r.length > 12 && /^[0-9a-f]+$/.test(r) ? r.slice(0, 12) : r;
}

function age(t) {
  if (!t) return "—";
  const s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

function notify(text, isError = false) {
  const n = document.getElementById("notice");
  n.textContent = text;
  n.className = isError ? "notice error" : "notice";
  n.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => (n.hidden = true), 8000);
}

async function api(path, opts = {}) {
  const res = await fetch(path, { credentials: "same-origin", ...opts });
  const body = await res.json().catch(() => ({ error: `HTTP ${res.status}` }));
  if (!res.ok) {
    const err = new Error(body.error || `HTTP ${res.status}`);
    err.reason = body.reason;
    err.status = res.status;
    throw err;
  }
  return body;
}

// ---- live updates -------------------------------------------------------

function connect() {
  if (state.source) state.source.close();
  state.objects.clear();
  state.denied.clear();
  const src = new EventSource(`/api/events?namespace=${encodeURIComponent(state.namespace)}`);
  state.source = src;
  const on = (name, fn) => src.addEventListener(name, (e) => fn(JSON.parse(e.data)));
  src.onopen = () => (connection.textContent = `Live: ${state.namespace || "all namespaces"}`);
  src.onerror = () => (connection.textContent = "Disconnected: reconnecting…");
  on("reset", (d) => {
    for (const k of [...state.objects.keys()]) if (k.startsWith(d.kind + "/")) state.objects.delete(k);
    state.loading.add(d.kind);
    state.render();
  });
  on("upsert", (v) => {
    state.objects.set(key(v), v);
    // A snapshot of hundreds of objects is drawn once when it is complete;
    // later changes update their own row only.
    if (!state.loading.has(v.kind)) state.onUpdate(v, "upsert");
  });
  on("delete", (d) => {
    state.objects.delete(key(d));
    state.onUpdate(d, "delete");
  });
  on("synced", (d) => {
    state.loading.delete(d.kind);
    state.render();
  });
  on("denied", (d) => {
    state.denied.set(d.kind, d.error);
    state.render();
  });
  on("error", (d) => (connection.textContent = `${d.kind}: ${d.error}`));
}

// ---- overview ------------------------------------------------------------

const phases = ["Pending", "Initialized", "Waiting", "Progressing", "WaitingPromotion", "Promoting", "Finalising",
  "Succeeded", "Failed", "Terminating", "Terminated", "Ready", "Reconciling", "Suspended"];

function overviewRow(v) {
  const href = `#/${v.kind.toLowerCase()}/${encodeURIComponent(v.namespace)}/${encodeURIComponent(v.name)}`;
  return h("tr", { "data-key": key(v) },
    h("td", {}, v.kind),
    h("td", {}, v.namespace),
    h("th", { scope: "row" }, h("a", { href }, v.name)),
    h("td", { class: `phase phase-${v.phase}` }, v.phase, v.suspended && v.phase !== "Suspended" ? " (suspended)" : ""),
    h("td", { class: "num" }, v.kind === "Canary" ? `${v.weight}%` : "—"),
    h("td", { class: "revision" }, revisionCell(v)),
    h("td", { class: "hide-narrow" }, v.lastResult || "—"),
    h("td", { class: "num" }, h("time", { datetime: v.created }, age(v.created))));
}

// revisionCell is a Canary's release revision and the commit that started
// it, linked through its GitSync's repository when the stream carries that
// GitSync; a GitSync's applied commit, linked.
function revisionCell(v) {
  if (v.kind === "GitSync") return v.sha ? commitLink(v.sha, v.commitPrefix) : h("code", {}, shortRev(v.revision));
  const gs = v.source && state.objects.get(`GitSync/${v.source.gitSyncNamespace}/${v.source.gitSyncName}`);
  return [h("code", {}, shortRev(v.revision)), v.sourceSha ? [" ", commitLink(v.sourceSha, gs?.commitPrefix)] : null];
}

function visible(v) {
  return !state.phase || v.phase === state.phase;
}

function renderOverview() {
  const nsInput = h("input", { id: "ns", name: "namespace", value: state.namespace, placeholder: "all namespaces", autocomplete: "off" });
  const phaseSel = h("select", { id: "phase", name: "phase" }, h("option", { value: "" }, "any"),
    phases.map((p) => h("option", { value: p, selected: p === state.phase }, p)));
  const form = h("form", { class: "filters", role: "search", "aria-label": "Filter" ,
    onsubmit: (e) => { e.preventDefault(); state.namespace = nsInput.value.trim(); connect(); renderOverview(); } },
    h("label", { for: "ns" }, "Namespace", nsInput),
    h("label", { for: "phase" }, "Phase", phaseSel),
    h("button", { type: "submit" }, "Apply"));
  phaseSel.addEventListener("change", () => { state.phase = phaseSel.value; fillRows(); });
  const tbody = h("tbody", { id: "rows" });
  const table = h("table", {},
    h("caption", {}, "Canaries and GitSyncs"),
    h("thead", {}, h("tr", {}, ["Kind", "Namespace", "Name", "Phase", "Weight", "Revision", "Last result", "Age"]
      .map((c) => h("th", { scope: "col", class: c === "Last result" ? "hide-narrow" : undefined }, c)))),
    tbody);
  const denied = h("div", { id: "denied" });
  main.replaceChildren(h("h1", {}, "Overview"), form, denied, h("div", { class: "table-wrap" }, table));
  fillRows();

  function fillRows() {
    denied.replaceChildren(...[...state.denied].map(([kind, msg]) =>
      h("p", { class: "denied" }, `${kind}s in ${state.namespace || "all namespaces"}: ${msg}`)));
    const rows = [...state.objects.values()].filter(visible)
      .sort((a, b) => key(a).localeCompare(key(b))).map(overviewRow);
    tbody.replaceChildren(...rows);
    if (!rows.length) tbody.append(h("tr", {}, h("td", { colspan: 8, class: "empty" }, "Nothing to show here (yet).")));
  }
  state.render = fillRows;
  // Incremental update: replace or insert the one row that changed.
  state.onUpdate = (v, op) => {
    const old = tbody.querySelector(`tr[data-key="${CSS.escape(key(v))}"]`);
    if (op === "delete" || !visible(v)) { if (old) old.remove(); return; }
    const row = overviewRow(v);
    if (old) { old.replaceWith(row); return; }
    tbody.querySelector("td.empty")?.parentElement.remove();
    const after = [...tbody.rows].find((r) => r.dataset.key > key(v));
    tbody.insertBefore(row, after || null);
  };
}

// ---- detail pages --------------------------------------------------------

function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v ?? "—")]));
}

function conditionsTable(conds) {
  if (!conds?.length) return h("p", { class: "muted" }, "No conditions yet.");
  return h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, "Conditions"),
    h("thead", {}, h("tr", {}, ["Type", "Status", "Reason", "Message", "Since"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, conds.map((c) => h("tr", {}, h("th", { scope: "row" }, c.type), h("td", {}, c.status), h("td", {}, c.reason),
      h("td", {}, c.message), h("td", {}, age(c.lastTransitionTime)))))));
}

function eventsTable(d) {
  if (d.eventsError) return h("p", { class: "denied" }, `Events: ${d.eventsError}`);
  if (!d.events.length) return h("p", { class: "muted" }, "No events.");
  return h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, "Events (newest first)"),
    h("thead", {}, h("tr", {}, ["Type", "Reason", "Message", "Count", "Last"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, d.events.map((e) => h("tr", {}, h("td", {}, e.type), h("td", {}, e.reason), h("td", {}, e.message),
      h("td", { class: "num" }, e.count), h("td", {}, age(e.last)))))));
}

function range(t) {
  if (!t) return "—";
  const lo = t.min ?? "−∞", hi = t.max ?? "+∞";
  return `[${lo}, ${hi}]`;
}

function stepsTable(v) {
  if (!v.history?.length) return h("p", { class: "muted" }, "No analysis steps yet.");
  const rows = [];
  for (const s of [...v.history].reverse()) {
    const checks = s.checks?.length ? s.checks : [{ name: "—", kind: "", outcome: "", message: s.message }];
    checks.forEach((c, i) => rows.push(h("tr", {},
      i === 0 ? h("th", { scope: "row", rowspan: checks.length }, age(s.time), h("br"), `${s.phase}, ${s.weight ?? 0}%`) : null,
      h("td", {}, c.name, c.kind ? h("span", { class: "muted" }, ` (${c.kind})`) : ""),
      h("td", { class: `outcome-${c.outcome}` }, c.outcome || "—", c.held ? " (held)" : ""),
      h("td", { class: "num" }, c.value ?? "—"),
      h("td", {}, c.kind === "metric" || v.thresholds?.[c.name] ? range(v.thresholds?.[c.name]) : c.comparedAgainst ? `vs ${c.comparedAgainst} ${c.comparedValue ?? ""}` : "—"),
      h("td", {}, c.message || c.reason || ""))));
  }
  return h("div", { class: "table-wrap" }, h("table", {}, h("caption", {}, "Analysis steps, newest first: every metric against its threshold, every webhook and gate"),
    h("thead", {}, h("tr", {}, ["Step", "Check", "Outcome", "Value", "Threshold", "Message"].map((c) => h("th", { scope: "col" }, c)))),
    h("tbody", {}, rows)));
}

function confirmAction(text) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-text").textContent = text;
  return new Promise((resolve) => {
    dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true });
    dlg.showModal();
    document.getElementById("confirm-cancel").focus();
  });
}

function actionButtons(kind, v, verbs) {
  if (!verbs.length) return null;
  const path = `/api/${kind === "Canary" ? "canaries" : "gitsyncs"}/${encodeURIComponent(v.namespace)}/${encodeURIComponent(v.name)}`;
  return h("div", { class: "actions", role: "group", "aria-label": "Actions" }, verbs.map((verb) =>
    h("button", { type: "button", "data-action": verb, class: verb === "abort" ? "danger" : undefined, onclick: async () => {
      if (!(await confirmAction(`${verb[0].toUpperCase() + verb.slice(1)} ${kind} ${v.namespace}/${v.name}?`))) return;
      try {
        const r = await api(`${path}/${verb}`, { method: "POST", headers: { "X-Sluice-CSRF": state.csrf } });
        notify(r.message);
      } catch (e) {
        notify(e.reason === "forbidden" ? `Not allowed: ${e.message.replace(/^not allowed: /, "")}` : e.message, true);
      }
    } }, verb === "sync" ? "sync now" : verb)));
}

async function renderDetail(kind, ns, name) {
  const path = `/api/${kind === "Canary" ? "canaries" : "gitsyncs"}/${encodeURIComponent(ns)}/${encodeURIComponent(name)}`;
  const title = h("h1", {}, `${kind} ${ns}/${name}`);
  const body = h("div", {}, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(title, body);
  // An all-namespaces stream already covers the object, unless it was refused.
  if (state.namespace !== ns && (state.namespace !== "" || state.denied.size)) { state.namespace = ns; connect(); }
  let pending = false;
  const load = async () => {
    try {
      const d = await api(path);
      body.replaceChildren(...(kind === "Canary" ? canaryDetail(d) : gitSyncDetail(d)));
    } catch (e) {
      body.replaceChildren(h("p", { class: "denied" }, e.reason === "forbidden" ? `Not allowed: ${e.message.replace(/^not allowed: /, "")}` : e.message));
    }
  };
  await load();
  // The stream says this object changed: reload it (and its events) once.
  state.onUpdate = (v) => {
    if (v.kind !== kind || v.namespace !== ns || v.name !== name || pending) return;
    pending = true;
    setTimeout(() => { pending = false; load(); }, 150);
  };
  // A new snapshot (a restarted watch) may carry a change the stream did not
  // relay one by one: reload once it is complete.
  state.render = () => { if (!state.loading.has(kind)) state.onUpdate({ kind, namespace: ns, name }); };
}

// pendingRequests lists the manual requests the engine has not handled yet.
function pendingRequests(v) {
  const handled = v.handled || {};
  const names = { "sluice.dev/promote": "promote", "sluice.dev/abort": "abort", "sluice.dev/retry": "retry" };
  const pending = Object.entries(v.requested || {}).filter(([k, t]) => handled[names[k]] !== t);
  return pending.map(([k, t]) => `${k}=${t}`).join(", ") || "none";
}

function canaryDetail(d) {
  const v = d.object;
  const src = v.source ? `${v.source.gitSyncNamespace}/${v.source.gitSyncName} @ ${shortRev(v.source.revision)}` : null;
  return [
    h("section", { "aria-labelledby": "s-state" }, h("h2", { id: "s-state" }, "State"),
      facts([
        ["Phase", h("span", { class: `phase phase-${v.phase}`, id: "phase-value" }, v.phase + (v.suspended ? " (suspended)" : ""))],
        ["Canary weight", h("span", { class: "weight" }, h("meter", { min: 0, max: 100, value: v.weight, "aria-label": "Canary weight" }),
          h("span", { id: "weight-value" }, `${v.weight}%`), v.maxWeight ? h("span", { class: "muted" }, ` of max ${v.maxWeight}%`) : "")],
        ["Failed checks", `${v.failedChecks}${v.threshold ? ` of ${v.threshold}` : ""}`],
        ["Revision", h("code", {}, v.revision || "—")],
        ["Source", src],
        ["Commit", commitLink(v.sourceSha, d.release?.commit?.url ? d.release.commit.url.slice(0, -v.sourceSha.length) : "", "commit-link")],
        ["Last result", v.lastResult],
        ["Pending requests", h("span", { id: "pending-requests" }, pendingRequests(v))],
      ])),
    actionButtons("Canary", v, d.actions),
    ...releaseSections(v, d.release),
    h("section", { "aria-labelledby": "s-steps" }, h("h2", { id: "s-steps" }, "Analysis steps: metrics, webhooks and gates"), stepsTable(v)),
    h("section", { "aria-labelledby": "s-cond" }, h("h2", { id: "s-cond" }, "Conditions"), conditionsTable(v.conditions)),
    h("section", { "aria-labelledby": "s-ev" }, h("h2", { id: "s-ev" }, "Events"), eventsTable(d)),
  ].filter(Boolean);
}

function gitSyncDetail(d) {
  const v = d.object;
  return [
    h("section", { "aria-labelledby": "s-state" }, h("h2", { id: "s-state" }, "State"),
      facts([
        ["Phase", h("span", { class: `phase phase-${v.phase}`, id: "phase-value" }, v.phase)],
        ["Repository", h("code", {}, v.url + (v.path ? ` (${v.path})` : ""))],
        ["Applied revision", h("code", {}, v.revision || "—")],
        ["Commit", commitLink(v.sha, v.commitPrefix, "commit-link")],
        ["Commit message", v.commit?.subject ? `${v.commit.subject}${v.commit.author ? ` (${v.commit.author})` : ""}` : null],
        ["Last applied", v.lastApplied ? `${age(v.lastApplied)} ago` : "never"],
        ["Last failure", h("span", { id: "last-failure" }, v.failureReason ? `${v.failureReason}: ${v.failureMessage}` : "none")],
        ["Last sync request", v.lastSyncRequest],
      ])),
    actionButtons("GitSync", v, d.actions),
    h("section", { "aria-labelledby": "s-inv" }, h("h2", { id: "s-inv" }, "Inventory"), healthTable(d)),
    h("section", { "aria-labelledby": "s-drift" }, h("h2", { id: "s-drift" }, "Drift corrections"), driftTable(d)),
    h("section", { "aria-labelledby": "s-cond" }, h("h2", { id: "s-cond" }, "Conditions"), conditionsTable(v.conditions)),
    h("section", { "aria-labelledby": "s-ev" }, h("h2", { id: "s-ev" }, "Events"), eventsTable(d)),
  ].filter(Boolean);
}

// ---- delivery --------------------------------------------------------------

async function renderDelivery() {
  const since = h("select", { id: "since", name: "since" }, ["7d", "30d", "90d"].map((w) => h("option", { value: w, selected: w === "30d" }, w)));
  const body = h("div", { id: "delivery-body" }, h("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(h("h1", {}, "Delivery"),
    h("p", { class: "muted" }, `Lead time for changes, deployment frequency, change failure rate and time to restore of each application (Canary) in ${state.namespace || "all namespaces"}: the figures of kubectl sluice report.`),
    h("form", { class: "filters", "aria-label": "Window" }, h("label", { for: "since" }, "Window", since)), body);
  const load = async () => {
    try {
      const rep = await api(`/api/delivery?namespace=${encodeURIComponent(state.namespace)}&since=${encodeURIComponent(since.value)}`);
      body.replaceChildren(deliveryTable(rep),
        h("p", {}, `Drift corrections of GitSyncs: ${rep.driftCorrections}`),
        ...(rep.eventsError ? [h("p", { class: "denied" }, rep.eventsError)] : []),
        ...(rep.notes || []).map((n) => h("p", { class: "muted" }, `Note: ${n}`)));
    } catch (e) {
      body.replaceChildren(h("p", { class: "denied" }, e.reason === "forbidden" ? `Not allowed: ${e.message.replace(/^not allowed: /, "")}` : e.message));
    }
  };
  since.addEventListener("change", load);
  state.render = () => {};
  state.onUpdate = () => {};
  await load();
}

// ---- routing -------------------------------------------------------------

function route() {
  const parts = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  if (parts[0] === "delivery") {
    renderDelivery();
    document.title = "Delivery · Sluice";
  } else if ((parts[0] === "canary" || parts[0] === "gitsync") && parts.length === 3) {
    renderDetail(parts[0] === "canary" ? "Canary" : "GitSync", parts[1], parts[2]);
    document.title = `${parts[2]} · Sluice`;
  } else {
    renderOverview();
    document.title = "Overview · Sluice";
  }
  main.focus({ preventScroll: true });
}

// signedIn replaces the local-mode footer in the cluster: who the page acts
// as (the server impersonates this user for every read and action) and a
// way to forget the token kept in the HttpOnly cookie.
function signedIn(user) {
  const footer = document.querySelector("footer p");
  footer.textContent = `Signed in as ${user}: you see what this user's RBAC allows. `;
  const out = document.createElement("button");
  out.type = "button";
  out.id = "logout";
  out.textContent = "Log out";
  out.addEventListener("click", async () => {
    const res = await fetch("/api/logout", { method: "POST", credentials: "same-origin" });
    if (res.ok) window.location.assign("/");
    else notify(`Log out failed: HTTP ${res.status}`, true);
  });
  footer.append(out);
}

async function start() {
  const s = await api("/api/session");
  state.csrf = s.csrfToken;
  state.actions = s.actions;
  state.namespace = s.namespace || "";
  if (s.user) signedIn(s.user);
  connect();
  window.addEventListener("hashchange", route);
  route();
}

start().catch((e) => notify(`The dashboard could not start: ${e.message}`, true));
