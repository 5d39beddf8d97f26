/**
 * The dashboard's single page: HTML, CSS and a small script, in one string so that every runtime
 * (Workers included, which has no filesystem) serves it with no build step. The script polls
 * `GET /api/stats` once a second and sends "try" requests to `GET /product/:id` or an
 * aggregation endpoint (whose waterfall rows then name their level and the need they waited on); it writes data
 * only through `textContent` and element attributes, never as HTML.
 *
 * @module
 */

/** The page served at `GET /`. */
export const DASHBOARD_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fanfare · live</title>
<link rel="icon" href="data:,">
<style>
:root { --bg: #f6f7f9; --card: #fff; --ink: #1d2330; --dim: #6b7280; --line: #e3e6eb;
  --ok: #2f9e5b; --error: #d64545; --timeout: #e08a1e; --skipped: #9aa3af; --hedged: #7c5cd6;
  --aborted: #4b5563; --accent: #2563eb; --circuit-open: #111827; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
  background: var(--bg); }
header { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: baseline;
  padding: .8rem 1rem; background: var(--ink); color: #fff; }
header h1 { margin: 0; font-size: 1.1rem; }
header small { color: #c7cbd3; }
#status::before { content: "●"; margin-right: .3rem; color: var(--skipped); }
#status.live::before { color: #4ade80; }
#status.down::before { color: var(--error); }
main { max-width: 1200px; margin: 0 auto; padding: 1rem; display: grid; gap: 1rem; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 1rem;
  min-width: 0; }
h2 { margin: 0 0 .6rem; font-size: .95rem; text-transform: uppercase; letter-spacing: .04em;
  color: var(--dim); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(9.5rem, 1fr)); gap: .6rem; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: .6rem .7rem; }
.card .label { color: var(--dim); font-size: .8rem; }
.card .value { font-size: 1.6rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.card .sub { color: var(--dim); font-size: .78rem; min-height: 1.1em; }
.card.absent .value { color: var(--skipped); }
svg.spark { width: 100%; height: 2rem; display: block; }
svg.spark polyline { fill: none; stroke: var(--accent); stroke-width: 1.5; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid var(--line);
  white-space: nowrap; }
th { color: var(--dim); font-weight: 500; font-size: .8rem; }
.mix { display: flex; height: .7rem; min-width: 8rem; border-radius: 3px; overflow: hidden;
  background: var(--line); }
.mix span { display: block; height: 100%; }
.legend { display: flex; flex-wrap: wrap; gap: .2rem .8rem; margin-top: .5rem; color: var(--dim);
  font-size: .8rem; }
.legend i { display: inline-block; width: .7rem; height: .7rem; border-radius: 2px;
  margin-right: .25rem; vertical-align: -1px; }
.ok { background: var(--ok); } .error { background: var(--error); }
.timeout { background: var(--timeout); } .skipped { background: var(--skipped); }
.hedged { background: var(--hedged); } .aborted { background: var(--aborted); }
.circuit-open { background: var(--circuit-open); }
form { display: grid; grid-template-columns: repeat(auto-fit, minmax(10rem, 1fr)); gap: .6rem;
  align-items: end; }
label { display: grid; gap: .2rem; font-size: .8rem; color: var(--dim); }
input, select, button { font: inherit; padding: .35rem .45rem; border: 1px solid var(--line);
  border-radius: 5px; background: #fff; color: var(--ink); min-width: 0; }
button { background: var(--accent); color: #fff; border: 0; font-weight: 600; cursor: pointer; }
fieldset { grid-column: 1 / -1; border: 1px dashed var(--line); border-radius: 6px; margin: 0;
  display: grid; grid-template-columns: repeat(auto-fit, minmax(9rem, 1fr)); gap: .5rem; }
legend { color: var(--dim); font-size: .8rem; }
.result { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap: 1rem;
  margin-top: 1rem; }
#answer-status { font-weight: 600; margin-bottom: .4rem; overflow-wrap: anywhere; }
.row { display: grid; grid-template-columns: 9.5rem minmax(0, 1fr); gap: .5rem; align-items: center;
  padding: .25rem 0; }
.row .name { font-size: .85rem; overflow: hidden; text-overflow: ellipsis; }
.row .badge { display: inline-block; margin-left: .3rem; padding: 0 .3rem; border-radius: 3px;
  color: #fff; font-size: .72rem; }
.row.degraded .name::after { content: "degraded"; margin-left: .3rem; color: var(--error);
  font-size: .72rem; font-weight: 600; }
.track { position: relative; height: 1.1rem; background: #f0f2f5; border-radius: 3px; }
.bar { position: absolute; top: 0; bottom: 0; border-radius: 3px; min-width: 2px; }
.deadline { position: absolute; top: -3px; bottom: -3px; width: 0;
  border-left: 2px dashed var(--ink); }
.axis { display: flex; justify-content: space-between; color: var(--dim); font-size: .75rem;
  margin-left: 10rem; }
pre { margin: 0; padding: .6rem; background: #0f172a; color: #e2e8f0; border-radius: 6px;
  max-height: 24rem; overflow: auto; font-size: .78rem; }
@media (max-width: 640px) {
  main { padding: .5rem; }
  .result { grid-template-columns: minmax(0, 1fr); }
  .row { grid-template-columns: 6.5rem minmax(0, 1fr); }
  .axis { margin-left: 7rem; }
  .card .value { font-size: 1.3rem; }
}
</style>
</head>
<body>
<header><h1>fanfare · live</h1><small id="status">connecting…</small></header>
<main>
<section aria-labelledby="live-title">
  <h2 id="live-title">Live <small id="window"></small></h2>
  <div class="cards">
    <div class="card"><div class="label">Requests / s</div><div class="value" id="rate">–</div>
      <svg class="spark" viewBox="0 0 60 20" preserveAspectRatio="none"><polyline id="spark" points=""/></svg>
      <div class="sub"><span id="total">0</span> since start</div></div>
    <div class="card"><div class="label">Latency p50</div><div class="value" id="p50">–</div>
      <div class="sub">p99 <span id="p99">–</span></div></div>
    <div class="card"><div class="label">Degraded share</div><div class="value" id="degraded">–</div>
      <div class="sub" id="statuses"></div></div>
    <div class="card"><div class="label">In-flight branches</div><div class="value" id="inflight">0</div>
      <div class="sub" id="ceiling">global ceiling: –</div></div>
    <div class="card" id="limiter-card"><div class="label">Waiting acquirers</div>
      <div class="value" id="waiting">–</div><div class="sub" id="limiter">–</div></div>
    <div class="card" id="admission-card"><div class="label">Admission limit</div>
      <div class="value" id="admission-limit">–</div>
      <svg class="spark" viewBox="0 0 60 20" preserveAspectRatio="none"><polyline id="limit-spark" points=""/></svg>
      <div class="sub" id="admission">–</div><div class="sub" id="bulkheads"></div></div>
    <div class="card" id="hedge-card"><div class="label">Hedges sent / won</div>
      <div class="value" id="hedges">–</div><div class="sub" id="hedge-note">–</div></div>
    <div class="card" id="retry-card"><div class="label">Retries sent</div>
      <div class="value" id="retries">–</div><div class="sub" id="circuits">–</div></div>
  </div>
</section>
<section aria-labelledby="endpoints-title" id="endpoints-section" hidden>
  <h2 id="endpoints-title">Aggregation endpoints <small>(the cards above are /product/:id)</small></h2>
  <div class="scroll"><table>
    <thead><tr><th>endpoint</th><th>requests / s</th><th>p50</th><th>p99</th><th>degraded</th><th>statuses</th></tr></thead>
    <tbody id="endpoints"></tbody>
  </table></div>
</section>
<section aria-labelledby="branches-title">
  <h2 id="branches-title">Branches</h2>
  <div class="scroll"><table>
    <thead><tr><th>branch</th><th>calls</th><th>p50</th><th>p99</th><th>outcome mix</th><th>counts</th></tr></thead>
    <tbody id="branches"></tbody>
  </table></div>
  <div class="legend"><span><i class="ok"></i>ok</span><span><i class="error"></i>error</span>
    <span><i class="timeout"></i>timeout</span><span><i class="skipped"></i>skipped</span>
    <span><i class="hedged"></i>hedged</span><span><i class="aborted"></i>aborted</span>
    <span><i class="circuit-open"></i>circuit-open</span>
    <span>┆ deadline</span></div>
</section>
<section aria-labelledby="try-title">
  <h2 id="try-title">Try a request</h2>
  <form id="try">
    <label>route <select name="route" id="route"><option value="/product/:id">/product/:id</option></select></label>
    <label>product id <input name="id" value="sku-42" required pattern="[A-Za-z0-9_\\-]{1,64}"></label>
    <label>policy <select name="policy"><option>bestEffort</option><option>collectAll</option>
      <option>failFast</option></select></label>
    <label>budget (ms) <input name="budget" type="number" min="10" max="10000" value="300"></label>
    <label>error rate (0–1) <input name="errorRate" type="number" min="0" max="1" step="0.05" value="0"></label>
    <label>slow = sleep (ms) <input name="slowMs" type="number" min="0" max="10000" value="400"></label>
    <fieldset id="faults"><legend>faults per branch</legend></fieldset>
    <button type="submit">Send</button>
  </form>
  <div class="result">
    <div><div id="answer-status">No request sent yet.</div><div id="waterfall"></div>
      <div class="axis" id="axis"></div></div>
    <pre id="answer">{}</pre>
  </div>
</section>
</main>
<script>
"use strict";
const $ = (id) => document.getElementById(id);
const OUTCOMES = ["ok", "error", "timeout", "skipped", "hedged", "aborted", "circuit-open"];
const rates = [];
const limits = [];
let faultsBuilt = false;

function ms(value) {
  if (value === null || value === undefined) return "–";
  return (value < 10 ? value.toFixed(1) : Math.round(value)) + " ms";
}
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderStats(stats) {
  const { requests, branches, limiter, hedges, retries, circuits } = stats;
  $("window").textContent = "· last " + stats.windowS.toFixed(1) + " s";
  $("rate").textContent = requests.ratePerS.toFixed(1);
  $("total").textContent = String(requests.total);
  $("p50").textContent = ms(requests.p50Ms);
  $("p99").textContent = ms(requests.p99Ms);
  $("degraded").textContent = requests.degradedShare === null ? "–"
    : (requests.degradedShare * 100).toFixed(1) + " %";
  $("statuses").textContent = Object.entries(requests.statuses)
    .map(([status, n]) => status + ": " + n).join(" · ");
  rates.push(requests.ratePerS);
  if (rates.length > 60) rates.shift();
  const top = Math.max(1, ...rates);
  $("spark").setAttribute("points",
    rates.map((r, i) => (60 - rates.length + i) + "," + (19 - 18 * r / top).toFixed(2)).join(" "));

  const limit = limiter || {};
  $("inflight").textContent = String(limit.inFlight ?? branches.inFlight);
  $("ceiling").textContent = limiter ? "of a global ceiling of " + (limit.ceiling ?? "–")
    : "no global ceiling (limiter absent)";
  $("waiting").textContent = limiter ? String(limit.waiting ?? "–") : "–";
  $("limiter").textContent = limiter ? "global limiter" : "no global limiter";
  $("limiter-card").classList.toggle("absent", !limiter);
  const admission = stats.admission;
  $("admission-card").classList.toggle("absent", !admission);
  $("admission-limit").textContent = admission ? String(admission.limit ?? "–") : "–";
  $("admission").textContent = admission
    ? "of " + (admission.maxLimit ?? "–") + " · in flight " + (admission.inFlight ?? "–") +
      " · queued " + (admission.waiting ?? "–") + " · 503 " + admission.shed + " in the window"
    : "no admission limit";
  $("bulkheads").textContent = stats.bulkheads ? "bulkheads: " +
    Object.entries(stats.bulkheads).map(([name, limit]) => name + " " + limit).join(" · ") : "";
  if (admission && admission.limit !== undefined) {
    limits.push(admission.limit);
    if (limits.length > 60) limits.shift();
    const most = Math.max(1, ...limits);
    $("limit-spark").setAttribute("points", limits.map((l, i) =>
      (60 - limits.length + i) + "," + (19 - 18 * l / most).toFixed(2)).join(" "));
  }
  $("hedges").textContent = hedges ? (hedges.sent ?? "–") + " / " + (hedges.won ?? "–") : "–";
  $("hedge-note").textContent = hedges ? "in the window" : "hedging off";
  $("hedge-card").classList.toggle("absent", !hedges);
  $("retries").textContent = retries ? String(retries.sent) : "–";
  const tripped = Object.entries(circuits || {}).filter(([, state]) => state !== "closed");
  $("circuits").textContent = !circuits ? "no breakers"
    : tripped.length === 0 ? "every breaker closed"
    : tripped.map(([branch, state]) => branch + " " + state).join(" · ");
  $("retry-card").classList.toggle("absent", !retries && !circuits);

  const rows = Object.entries(branches.byName).map(([name, b]) => {
    const tr = el("tr");
    const total = Object.values(b.outcomes).reduce((s, n) => s + n, 0);
    const mix = el("div", "mix");
    for (const outcome of Object.keys(b.outcomes)) {
      const n = b.outcomes[outcome];
      if (n === 0) continue;
      const part = el("span", OUTCOMES.includes(outcome) ? outcome : "aborted");
      part.style.width = (100 * n / total) + "%";
      part.title = outcome + ": " + n;
      mix.append(part);
    }
    const counts = Object.entries(b.outcomes).filter(([, n]) => n > 0)
      .map(([o, n]) => o + " " + n).join(", ");
    const mixCell = el("td");
    mixCell.append(mix);
    const state = circuits && circuits[name];
    const label = state && state !== "closed" ? name + " (circuit " + state + ")" : name;
    tr.append(el("td", "", label), el("td", "", String(total)), el("td", "", ms(b.p50Ms)),
      el("td", "", ms(b.p99Ms)), mixCell, el("td", "", counts || "–"));
    return tr;
  });
  $("branches").replaceChildren(...rows);
  const endpoints = stats.endpoints || [];
  $("endpoints-section").hidden = endpoints.length === 0;
  $("endpoints").replaceChildren(...endpoints.map(({ name, route, requests }) => {
    const tr = el("tr");
    tr.dataset.endpoint = name;
    const statuses = Object.entries(requests.statuses).map(([code, n]) => code + ": " + n).join(", ");
    const degraded = requests.degradedShare === null ? "–" : (requests.degradedShare * 100).toFixed(1) + " %";
    tr.append(el("td", "", route + " (" + name + ")"), el("td", "", String(requests.ratePerS)),
      el("td", "", ms(requests.p50Ms)), el("td", "", ms(requests.p99Ms)), el("td", "", degraded),
      el("td", "", statuses || "–"));
    return tr;
  }));
  if (!faultsBuilt) buildFaults(stats.registry, stats.endpoints || []);
}

function buildFaults(registry, endpoints) {
  faultsBuilt = true;
  for (const { name, route } of endpoints) {
    const option = el("option", "", route + " (" + name + ")");
    option.value = route;
    $("route").append(option);
  }
  const fields = registry.map(({ name, required, timeoutMs }) => {
    const label = el("label", "", name + (required ? " (required)" : "") + " · " + timeoutMs + " ms");
    const select = el("select");
    select.name = "fault." + name;
    for (const [value, text] of [["", "no fault"], ["slow", "slow"], ["fail", "fail"]]) {
      const option = el("option", "", text);
      option.value = value;
      select.append(option);
    }
    label.append(select);
    return label;
  });
  $("faults").append(...fields);
}

async function poll() {
  try {
    const response = await fetch("/api/stats", { cache: "no-store" });
    if (!response.ok) throw new Error("GET /api/stats answered " + response.status);
    renderStats(await response.json());
    $("status").className = "live";
    $("status").textContent = "live · " + new Date().toLocaleTimeString();
  } catch (error) {
    $("status").className = "down";
    $("status").textContent = "cannot reach the gateway: " + error.message;
  } finally {
    setTimeout(poll, 1000);
  }
}

function renderWaterfall(body) {
  const timings = body.timings || {};
  const degraded = new Set(Object.keys(body.reasons || {}));
  const ends = Object.values(timings).flatMap((t) => [t.endMs || 0, t.deadlineMs || 0]);
  const span = Math.max(body.budgetMs || 0, ...ends, 1);
  const at = (value) => (100 * value / span) + "%";
  const rows = Object.entries(timings).map(([name, t]) => {
    const row = el("div", "row" + (degraded.has(name) ? " degraded" : ""));
    row.dataset.branch = name;
    row.dataset.outcome = t.outcome;
    row.dataset.degraded = String(degraded.has(name));
    // Aggregation endpoints: the branch's level in the graph and the need it waited on.
    const graph = t.level === undefined ? "" : " · L" + t.level + (t.waitedOn ? " ← " + t.waitedOn : "");
    const label = el("div", "name", name + graph);
    label.append(el("span", "badge " + t.outcome, t.outcome));
    label.title = body.reasons && body.reasons[name] || t.outcome;
    if (t.level !== undefined) row.dataset.level = String(t.level);
    if (t.waitedOn) row.dataset.waitedOn = t.waitedOn;
    const track = el("div", "track");
    if (t.startMs !== undefined) {
      const bar = el("div", "bar " + t.outcome);
      bar.style.left = at(t.startMs);
      bar.style.width = at(Math.max(0, (t.endMs ?? t.startMs) - t.startMs));
      bar.title = name + ": " + ms(t.startMs) + " → " + ms(t.endMs) + " (" + t.outcome + ")";
      track.append(bar);
    }
    if (t.deadlineMs !== undefined) {
      const line = el("div", "deadline");
      line.style.left = at(t.deadlineMs);
      line.title = "deadline " + ms(t.deadlineMs);
      track.append(line);
    }
    row.append(label, track);
    return row;
  });
  $("waterfall").replaceChildren(...rows);
  $("axis").replaceChildren(el("span", "", "0"), el("span", "", ms(span / 2)), el("span", "", ms(span)));
}

$("try").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const query = new URLSearchParams({ policy: form.get("policy"), budget: form.get("budget") });
  const rate = Number(form.get("errorRate"));
  if (rate > 0) query.set("fault.errorRate", String(rate));
  for (const [key, value] of form) {
    if (!key.startsWith("fault.") || value === "") continue;
    query.set(key, value === "slow" ? "slow:" + Number(form.get("slowMs")) : value);
  }
  const route = form.get("route") || "/product/:id";
  // An aggregation endpoint takes the id for each of its route parameters, the policy, budget
  // and error rate; the per-branch faults name the product's branches, not its own.
  const endpointQuery = new URLSearchParams({ policy: form.get("policy"), budget: form.get("budget") });
  if (rate > 0) endpointQuery.set("fault.errorRate", String(rate));
  const url = route === "/product/:id"
    ? "/product/" + encodeURIComponent(form.get("id")) + "?" + query
    : route.replace(/:[A-Za-z0-9_]+/g, encodeURIComponent(form.get("id"))) + "?" + endpointQuery;
  $("answer-status").textContent = "GET " + url + " …";
  const started = performance.now();
  try {
    const response = await fetch(url);
    const body = await response.json();
    const took = performance.now() - started;
    // The trace this request was (traceresponse: 00-<trace id>-<span id>-<flags>), to look up in
    // the tracing backend: its branch spans end where the waterfall's bars do.
    const traceId = (response.headers.get("traceresponse") || "").split("-")[1];
    $("answer-status").textContent = response.status + " in " + ms(took) + " · GET " + url +
      (traceId ? " · trace " + traceId : "");
    $("answer").textContent = JSON.stringify(body, null, 2);
    renderWaterfall(body);
  } catch (error) {
    $("answer-status").textContent = "request failed: " + error.message;
  }
});

poll();
</script>
</body>
</html>
`;
