// The usage dashboard: one page over the gateway's documented /api/ endpoints, so it is
// also their example. No framework and no build step. Every value from the API is put in
// the page as text (textContent), never as HTML: the request log holds what callers sent.
"use strict";

const KEY = "llmg-dashboard-key";
const $ = (id) => document.getElementById(id);
const state = { account: null, admin: false, cursor: null, users: [] };

// --- the API -------------------------------------------------------------------------

class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error && body.error.message) || `HTTP ${status}`);
    this.status = status;
  }
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${sessionStorage.getItem(KEY)}` };
  if (options.body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method: options.method || "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const body = await response.json().catch(() => null);
  if (response.status === 401) {
    signOut("The key was refused (revoked or expired?). Sign in again.");
  }
  if (!response.ok) throw new ApiError(response.status, body);
  return body;
}

function query(params) {
  const pairs = Object.entries(params).filter(([, v]) => v !== "" && v !== null && v !== undefined);
  return pairs.length ? "?" + new URLSearchParams(pairs).toString() : "";
}

// --- small DOM helpers -----------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (name === "onclick") node.addEventListener("click", value);
    else if (value !== null && value !== undefined) node.setAttribute(name, value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function table(caption, columns, rows) {
  if (!rows.length) return el("p", { class: "hint" }, `${caption}: nothing in this period.`);
  return el(
    "table",
    {},
    el("caption", { class: "visually-hidden" }, caption),
    el("thead", {}, el("tr", {}, columns.map((c) => el("th", { scope: "col" }, c)))),
    el("tbody", {}, rows.map((cells) => el("tr", {}, cells.map((c) => el("td", {}, c))))),
  );
}

// Each section paints only the answer to its latest request: switching the period or
// the user quickly must not let an older, slower answer paint over a newer one.
const latest = {};
function ticket(id) {
  const mine = (latest[id] = (latest[id] || 0) + 1);
  return () => latest[id] === mine;
}

function show(id, node) {
  $(id).replaceChildren(node);
}

function failed(id, error) {
  show(id, el("p", { class: "error", role: "alert" }, error.message));
}

// The API's amounts are exact decimal strings: shown as they are. Computed numbers (a
// chart's scale) get three significant digits.
function money(usd) {
  if (usd === null || usd === undefined) return "—";
  if (typeof usd === "string") return `$${usd}`;
  return `$${usd >= 1 ? usd.toFixed(2) : Number(usd.toPrecision(3))}`;
}
const count = (n) => (n === null || n === undefined ? "—" : Number(n).toLocaleString("en-US"));
const ms = (n) => (n === null || n === undefined ? "—" : `${Math.round(n)} ms`);
const when = (ts) => new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC";

// --- scope: period and user --------------------------------------------------------------

function period() {
  const now = Date.now() / 1000;
  const choice = $("period").value;
  if (choice === "24h") return { since: now - 86400, until: now, bucket: "hour" };
  if (choice === "7d") return { since: now - 7 * 86400, until: now, bucket: "hour" };
  if (choice === "30d") return { since: now - 30 * 86400, until: now, bucket: "day" };
  const start = new Date();
  const month = Date.UTC(start.getUTCFullYear(), start.getUTCMonth(), 1) / 1000;
  return { since: month, until: now, bucket: "day" };
}

function scope() {
  const { since, until } = period();
  return { since: Math.floor(since), until: Math.ceil(until), user: state.admin ? $("user-filter").value : "" };
}

// --- sections ---------------------------------------------------------------------------

async function loadBudgets() {
  const current = ticket("budgets");
  try {
    const names = state.admin
      ? ($("user-filter").value ? [$("user-filter").value] : state.users.map((u) => u.name))
      : [state.account.user && state.account.user.name].filter(Boolean);
    const budgets = await Promise.all(names.slice(0, 50).map((n) => api(`/api/budget${query({ user: n })}`)));
    const cards = budgets.map(budgetCard);
    const key = state.account.key;
    if (!state.admin && key.monthly_budget_usd !== null) {
      cards.push(meter(`Key ${key.name}`, key.spent_this_month_usd, key.monthly_budget_usd, null, []));
    }
    if (!current()) return;
    show("budgets", cards.length ? el("div", { class: "budgets" }, cards) : el("p", { class: "hint" }, "No users yet."));
  } catch (error) {
    failed("budgets", error);
  }
}

function budgetCard(b) {
  return meter(`User ${b.user}`, b.spent_usd, b.limit_usd, b.projected_month_end_usd, b.thresholds_crossed, b.projected_over_budget);
}

function meter(label, spent, limit, projected, crossed, over) {
  const parts = [el("h3", {}, label), el("p", { class: "big" }, money(spent), limit === null ? " (no budget)" : ` of ${money(limit)}`)];
  if (limit !== null && Number(limit) > 0) {
    const fraction = Math.min(Number(spent) / Number(limit), 1);
    parts.push(
      el("meter", { min: "0", max: "1", low: "0.5", high: "0.8", optimum: "0", value: String(fraction), "aria-label": `${label}: ${Math.round(fraction * 100)} % of the budget spent` }),
    );
  }
  if (projected !== null && projected !== undefined) {
    parts.push(el("p", { class: over ? "warn" : "" }, `Projected by month end: ${money(projected)}${over ? " — over budget" : ""}`));
  }
  if (crossed && crossed.length) {
    parts.push(el("p", { class: "warn" }, `Thresholds crossed: ${crossed.map((t) => `${Math.round(t * 100)} %`).join(", ")}`));
  }
  return el("div", { class: "budget" }, parts);
}

async function loadTotals() {
  const current = ticket("totals");
  try {
    const s = await api(`/api/usage/summary${query(scope())}`);
    if (!current()) return;
    const tile = (label, value) => el("div", { class: "tile" }, el("span", { class: "hint" }, label), el("strong", {}, value));
    show("totals", el("div", { class: "tiles" },
      tile("Cost", money(s.cost_usd)),
      tile("Requests", count(s.requests)),
      tile("Tokens in / out", `${count(s.prompt_tokens)} / ${count(s.completion_tokens)}`),
      tile("Error rate", s.error_rate === null ? "—" : `${(s.error_rate * 100).toFixed(2)} %`),
      tile("p50 / p95 latency", `${ms(s.latency_ms.p50)} / ${ms(s.latency_ms.p95)}`),
    ));
  } catch (error) {
    failed("totals", error);
  }
}

async function loadChart() {
  const current = ticket("chart");
  try {
    const { bucket } = period();
    const chart = await api(`/api/usage/charts${query({ ...scope(), type: $("chart-type").value, bucket })}`);
    if (!current()) return;
    show("chart", drawChart(chart));
  } catch (error) {
    failed("chart", error);
  }
}

// The same six colours as .c0 to .c5 in app.css (the policy allows no inline style).
const COLOURS = ["#1f5fbf", "#b3451b", "#2e7d32", "#6a3fa0", "#8a6d00", "#00796b"];
const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(chart) {
  const series = chart.series.filter((s) => s.points.length);
  const title = $("chart-type").selectedOptions[0].textContent;
  if (!series.length) return el("p", { class: "hint" }, `${title}: nothing in this period.`);
  const points = series.flatMap((s) => s.points);
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => Number(p[1] || 0));
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const y1 = Math.max(...ys) || 1;
  const W = 720, H = 240, L = 64, B = 28;
  const x = (t) => L + (x1 === x0 ? (W - L) / 2 : ((t - x0) / (x1 - x0)) * (W - L - 8));
  const y = (v) => H - B - (Number(v || 0) / y1) * (H - B - 8);
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title} over time` });
  root.append(svg("line", { x1: L, y1: H - B, x2: W, y2: H - B, class: "axis" }));
  root.append(svg("text", { x: L - 6, y: 14, "text-anchor": "end", class: "label" }, label(y1, chart.type)));
  // y1 is a number even where the points are exact strings.
  root.append(svg("text", { x: L - 6, y: H - B, "text-anchor": "end", class: "label" }, "0"));
  root.append(svg("text", { x: L, y: H - 8, class: "label" }, when(x0).slice(0, 16)));
  root.append(svg("text", { x: W, y: H - 8, "text-anchor": "end", class: "label" }, when(x1).slice(0, 16)));
  series.forEach((s, i) => {
    const d = s.points.map((p, j) => `${j ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    root.append(svg("path", { d, fill: "none", stroke: COLOURS[i % COLOURS.length], "stroke-width": "2" }));
    for (const p of s.points) {
      root.append(svg("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: "2.5", fill: COLOURS[i % COLOURS.length] }));
    }
  });
  const legend = el("ul", { class: "legend" }, series.map((s, i) =>
    el("li", {}, el("span", { class: `swatch c${i % COLOURS.length}` }), s.name)));
  const rows = series.flatMap((s) => s.points.map((p) => [s.name, when(p[0]), label(p[1], chart.type)]));
  const data = el("details", {}, el("summary", {}, "Show the data as a table"), table(`${title} data`, ["Series", "Time", "Value"], rows));
  return el("div", {}, root, legend, data);
}

function label(value, kind) {
  if (value === null || value === undefined) return "—";
  if (kind === "cost") return money(value);
  if (kind === "latency") return ms(value);
  return count(value);
}

async function loadBreakdown() {
  const current = ticket("breakdown");
  try {
    const by = $("breakdown-by").value;
    const result = await api(`/api/usage/breakdown${query({ ...scope(), by })}`);
    if (!current()) return;
    const rows = result.data.map((r) => [r.name === null ? "(none)" : r.name, count(r.requests), count(r.errors), count(r.prompt_tokens), count(r.completion_tokens), money(r.cost_usd)]);
    show("breakdown", table(`Usage by ${by}`, [by[0].toUpperCase() + by.slice(1), "Requests", "Errors", "Tokens in", "Tokens out", "Cost"], rows));
  } catch (error) {
    failed("breakdown", error);
  }
}

function filters() {
  const form = new FormData($("filters"));
  const chosen = {};
  for (const [name, value] of form.entries()) chosen[name] = String(value).trim();
  return chosen;
}

async function loadRequests(append = false) {
  const current = ticket("requests");
  try {
    const params = { ...scope(), ...filters(), limit: 25, cursor: append ? state.cursor : "" };
    const page = await api(`/api/usage/requests${query(params)}`);
    if (!current()) return;
    state.cursor = page.next_cursor;
    const rows = page.data.map((r) => el("tr", {},
      el("td", {}, el("button", { type: "button", class: "link", onclick: (event) => openRequest(r.request_id, event.currentTarget), "aria-label": `${when(r.ts).slice(5, 19)}, open request ${r.request_id}` }, when(r.ts).slice(5, 19))),
      el("td", {}, r.alias || "—"), el("td", {}, r.provider || "—"), el("td", {}, r.key_name || "—"),
      el("td", {}, String(r.http_status)), el("td", {}, r.outcome), el("td", {}, ms(r.latency_ms)), el("td", {}, money(r.cost_usd))));
    const body = append && $("requests").querySelector("tbody");
    if (body) {
      body.append(...rows);
    } else if (!rows.length) {
      show("requests", el("p", { class: "hint" }, "No requests match."));
    } else {
      show("requests", el("table", {},
        el("caption", { class: "visually-hidden" }, "Requests, newest first"),
        el("thead", {}, el("tr", {}, ["Time (UTC)", "Model", "Provider", "Key", "Status", "Outcome", "Latency", "Cost"].map((c) => el("th", { scope: "col" }, c)))),
        el("tbody", {}, rows)));
    }
    $("more").hidden = !page.has_more;
  } catch (error) {
    failed("requests", error);
  }
}

async function openRequest(id, opener) {
  const box = $("detail");
  box.hidden = false;
  try {
    const r = await api(`/api/usage/requests/${encodeURIComponent(id)}${query({ user: scope().user })}`);
    const facts = [
      ["Request id", r.request_id], ["Client's id", r.client_request_id], ["Time", when(r.ts)], ["API", r.api],
      ["Model (alias)", r.alias], ["Answered by", r.provider ? `${r.provider} / ${r.route_model}` : null],
      ["Attempts", r.attempts], ["HTTP status", r.http_status], ["Outcome", r.outcome],
      ["Error", r.error_type ? `${r.error_type}: ${r.error_message || ""}` : null],
      ["Latency", ms(r.latency_ms)], ["Time to first token", r.ttft_ms === null ? null : ms(r.ttft_ms)],
      ["Gateway overhead", ms(r.overhead_ms)], ["Tokens in / out / cached", `${count(r.prompt_tokens)} / ${count(r.completion_tokens)} / ${count(r.cached_tokens)}`],
      ["Cost", money(r.cost_usd)], ["Saved by the cache", money(r.saved_cost_usd)], ["Streamed", r.streamed ? "yes" : "no"],
      ["Cache hit", r.cached ? "yes" : "no"], ["Key", r.key_name], ["User", r.owner], ["Tenant", r.tenant], ["End user", r.end_user], ["Agent", r.agent],
    ].filter(([, v]) => v !== null && v !== undefined && v !== "");
    const parts = [el("h3", { id: "detail-h" }, `Request ${r.request_id}`),
      el("dl", {}, facts.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]))];
    if (r.failed_attempts.length) {
      parts.push(el("h4", {}, "Failed attempts (then fallback)"),
        table("Failed attempts", ["Provider", "Model", "Reason", "Status"], r.failed_attempts.map((a) => [a.provider, a.model, a.reason, a.status === null ? "—" : String(a.status)])));
    }
    if (r.debug) {
      parts.push(el("h4", {}, "Debug bodies (secrets redacted)"),
        el("pre", {}, JSON.stringify(r.debug.request_headers, null, 2)), el("pre", {}, r.debug.request_body || ""),
        el("pre", {}, JSON.stringify(r.debug.response_headers, null, 2)), el("pre", {}, r.debug.response_body || ""));
    }
    // Closing gives the focus back to the row it was opened from.
    parts.push(el("button", { type: "button", onclick: () => { box.hidden = true; if (opener) opener.focus(); } }, "Close"));
    box.replaceChildren(...parts);
    box.focus();
  } catch (error) {
    box.replaceChildren(el("p", { class: "error", role: "alert" }, error.message));
  }
}

async function loadHealth() {
  const current = ticket("health");
  try {
    const providers = await api("/api/providers");
    if (!current()) return;
    const percent = (rate) => (rate === null ? "—" : `${(rate * 100).toFixed(2)} %`);
    // One row per route (provider and model) that answered in the last hour; a provider
    // without traffic still shows its circuit.
    const rows = providers.data.filter((p) => p.enabled).flatMap((p) => {
      const routes = p.recent_routes.length ? p.recent_routes : [{ model: null, requests: 0, error_rate: null, p50_latency_ms: null, p95_latency_ms: null }];
      return routes.map((r) => [p.name, r.model || "—", p.circuit_state || "—", count(r.requests), percent(r.error_rate), ms(r.p50_latency_ms), ms(r.p95_latency_ms)]);
    });
    show("health", table("Route health", ["Provider", "Model", "Circuit", "Requests", "Error rate", "p50", "p95"], rows));
  } catch (error) {
    failed("health", error);
  }
}

// --- admin: users and keys ------------------------------------------------------------------

async function loadUsers() {
  const listed = await api("/api/users?per_page=200");
  state.users = listed.data;
  const options = (first) => [first, ...state.users.map((u) => el("option", { value: u.name }, u.name))];
  const current = $("user-filter").value;
  $("user-filter").replaceChildren(...options(el("option", { value: "" }, "Everyone")));
  $("user-filter").value = current;
  $("new-key-user").replaceChildren(...options(null));
  show("users", table("Users", ["Name", "Monthly budget", "Change budget"], state.users.map((u) => {
    const input = el("input", { "aria-label": `New monthly budget for ${u.name} (USD, empty for none)`, inputmode: "decimal", size: "8" });
    const save = el("button", { type: "button", onclick: () => setBudget(u.name, input.value), "aria-label": `Set the budget of ${u.name}` }, "Set");
    return [u.name, money(u.monthly_budget_usd), el("span", {}, input, " ", save)];
  })));
}

async function loadKeys() {
  const listed = await api("/api/keys?per_page=200");
  show("keys", table("Keys", ["Id", "User", "Name", "Prefix", "State", "RPM", "Budget", ""], listed.data.map((k) => [
    String(k.id), k.user, k.name, k.prefix, k.state, k.rpm === null ? "—" : String(k.rpm), money(k.monthly_budget_usd),
    k.active ? el("button", { type: "button", class: "danger", onclick: () => revokeKey(k), "aria-label": `Revoke key ${k.user}/${k.name}` }, "Revoke") : "",
  ])));
}

function adminSays(text, error = false) {
  const box = $("admin-message");
  box.textContent = text;
  box.className = error ? "error" : "ok";
}

async function setBudget(name, value) {
  try {
    await api(`/api/users/${encodeURIComponent(name)}`, { method: "PATCH", body: { monthly_budget_usd: value.trim() || null } });
    adminSays(`Budget of ${name} set.`);
    await Promise.all([loadUsers(), loadBudgets()]);
  } catch (error) {
    adminSays(error.message, true);
  }
}

async function revokeKey(key) {
  if (!window.confirm(`Revoke ${key.user}/${key.name}? Requests with it will be refused.`)) return;
  try {
    await api(`/api/keys/${key.id}`, { method: "DELETE" });
    adminSays(`Key ${key.user}/${key.name} revoked.`);
    await loadKeys();
  } catch (error) {
    adminSays(error.message, true);
  }
}

async function createUser(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { name: String(form.get("name")).trim() };
  if (String(form.get("budget")).trim()) body.monthly_budget_usd = String(form.get("budget")).trim();
  try {
    await api("/api/users", { method: "POST", body });
    adminSays(`User ${body.name} created.`);
    event.target.reset();
    await Promise.all([loadUsers(), loadBudgets()]);
  } catch (error) {
    adminSays(error.message, true);
  }
}

async function createKey(event) {
  event.preventDefault();
  const form = new FormData(event.target);
  const body = { user: String(form.get("user")), name: String(form.get("name")).trim() };
  const rpm = String(form.get("rpm")).trim();
  if (rpm) {
    // A typo must not become "no limit": Number("1,000") is NaN, which JSON sends as null.
    if (!/^[0-9]+$/.test(rpm) || Number(rpm) < 1) {
      adminSays("Requests per minute must be a whole number above 0.", true);
      return;
    }
    body.rpm = Number(rpm);
  }
  if (String(form.get("budget")).trim()) body.monthly_budget_usd = String(form.get("budget")).trim();
  try {
    const created = await api("/api/keys", { method: "POST", body });
    event.target.reset();
    const box = $("secret");
    const secret = el("code", { id: "new-secret" }, created.secret);
    const copy = el("button", { type: "button", onclick: () => navigator.clipboard && navigator.clipboard.writeText(created.secret) }, "Copy");
    box.replaceChildren(el("p", {}, `Key ${created.user}/${created.name} created. Its secret is shown this once; store it now:`), secret, " ", copy,
      el("button", { type: "button", onclick: () => { box.hidden = true; box.replaceChildren(); } }, "Done"));
    box.hidden = false;
    adminSays(`Key ${created.user}/${created.name} created.`);
    await loadKeys();
  } catch (error) {
    adminSays(error.message, true);
  }
}

// --- start ------------------------------------------------------------------------------

async function refresh() {
  $("status").textContent = "Loading…";
  state.cursor = null;
  await Promise.all([loadBudgets(), loadTotals(), loadChart(), loadBreakdown(), loadRequests(), loadHealth()]);
  $("status").textContent = `Updated ${new Date().toLocaleTimeString()}`;
}

async function start() {
  try {
    state.account = await api("/api/account");
  } catch (error) {
    if (error.status === 401) return; // api() has signed out, saying why
    $("sign-in-error").textContent = `The gateway did not answer (${error.message}). Reload the page to try again.`;
    return;
  }
  state.admin = state.account.key.admin;
  document.body.classList.toggle("admin", state.admin);
  $("who").textContent = `${state.account.key.name}${state.admin ? " (admin)" : ""}`;
  $("sign-in-view").hidden = true;
  $("app").hidden = false;
  $("sign-out").hidden = false;
  if (state.admin) await Promise.all([loadUsers(), loadKeys()]).catch((error) => adminSays(error.message, true));
  await refresh();
}

const MESSAGE = "llmg-dashboard-message";

function signOut(message = "") {
  // A fresh page, so nothing of this session (an opened request, a new key's secret, the
  // tables) is left for whoever signs in next; the reason survives the reload.
  sessionStorage.removeItem(KEY);
  if (message) sessionStorage.setItem(MESSAGE, message);
  window.location.reload();
}

document.addEventListener("DOMContentLoaded", () => {
  $("sign-in").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(KEY, $("key").value.trim());
    $("key").value = "";
    $("sign-in-error").textContent = "";
    start();
  });
  $("sign-out").addEventListener("click", () => signOut());
  $("period").addEventListener("change", refresh);
  $("user-filter").addEventListener("change", refresh);
  $("chart-type").addEventListener("change", loadChart);
  $("breakdown-by").addEventListener("change", loadBreakdown);
  $("filters").addEventListener("submit", (event) => { event.preventDefault(); state.cursor = null; loadRequests(); });
  $("more").addEventListener("click", () => loadRequests(true));
  $("new-user").addEventListener("submit", createUser);
  $("new-key").addEventListener("submit", createKey);
  $("sign-in-error").textContent = sessionStorage.getItem(MESSAGE) || "";
  sessionStorage.removeItem(MESSAGE);
  if (sessionStorage.getItem(KEY)) start();
  else $("key").focus();
});
