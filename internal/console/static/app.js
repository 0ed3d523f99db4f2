// llmgate console: a small app over the management API. The key lives in sessionStorage and
// goes out only as the Authorization header; every URL is relative to the console (…/ui/), so
// it works under any stage or base path. Untrusted text is set with textContent only.
"use strict";

const KEY = "llmgate.key";
const API = new URL("../", location.href);
const PAGE_SIZE = 25;

const $ = (sel, root = document) => root.querySelector(sel);

// el builds an element: attributes (on* are listeners; "text" sets textContent), children.
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const state = { key: sessionStorage.getItem(KEY), me: null };

class APIError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// api calls the management API as the signed-in key.
async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.key } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(new URL(path, API), opts);
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!res.ok) {
    const msg = (data && data.error && data.error.message) || (data && data.detail) || res.statusText;
    throw new APIError(res.status, typeof msg === "string" ? msg : JSON.stringify(msg));
  }
  return data;
}

function qs(params) {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== undefined && v !== null) p.set(k, v);
  const s = p.toString();
  return s ? "?" + s : "";
}

// cursorPages remembers the cursors of the pages seen, so Previous goes back and Next goes on
// without the list being counted.
function cursorPages() {
  return { stack: [""], page: 1, next: null, get cursor() { return this.stack[this.page - 1]; }, reset() { this.stack = [""]; this.page = 1; this.next = null; } };
}

// withCursor adds a cursor parameter, empty for the first page.
const withCursor = (path, cursor) => path + (path.includes("?") ? "&" : "?") + "cursor=" + encodeURIComponent(cursor);

function pagerNav(label, id, pg, text, go) {
  return el("nav", { class: "pager", "aria-label": label },
    el("button", { type: "button", class: "secondary", disabled: pg.page <= 1, onclick: () => { pg.page--; go(); } }, "Previous"),
    el("span", { id, "aria-live": "polite", text }),
    el("button", { type: "button", class: "secondary", disabled: !pg.next, onclick: () => { pg.stack[pg.page] = pg.next; pg.page++; go(); } }, "Next"));
}

const plural = (n, word) => `${num(n)} ${word}${n === 1 ? "" : "s"}`;

const money = (v) => (v === null || v === undefined ? "—" : "$" + Number(v).toFixed(Number(v) !== 0 && Math.abs(v) < 0.01 ? 6 : 2));
const num = (v) => (v === null || v === undefined ? "—" : Number(v).toLocaleString("en-US"));
const date = (v) => (v ? new Date(v).toISOString().replace("T", " ").slice(0, 19) + " UTC" : "—");

function toast(msg) {
  const t = $("#toast");
  t.textContent = msg;
  t.classList.add("show");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => t.classList.remove("show"), 2500);
}

function errorBox(err) {
  return el("p", { class: "error", role: "alert", text: err.message || String(err) });
}

function meter(spend, max) {
  const m = el("div", { class: "meter", role: "img", "aria-label": max ? `${Math.round((spend / max) * 100)}% of budget used` : "no budget" });
  const bar = el("span");
  bar.style.width = max ? Math.min(100, (spend / max) * 100).toFixed(1) + "%" : "0%";
  m.append(bar);
  return m;
}

// ---- sign-in and who the key is -------------------------------------------------------

// whoami finds what the key is: the master key (or a proxy_admin key) sees everything; any
// other key its own user, keys and teams, as the management API decides.
async function whoami() {
  try {
    const info = await api("GET", "key/info");
    const k = info.info || {};
    const me = { admin: false, userID: k.user_id || "", teamID: k.team_id || "", role: "", label: k.key_alias || k.key_name || "virtual key", teams: [] };
    if (me.userID) {
      try {
        const u = await api("GET", "user/info" + qs({ user_id: me.userID }));
        me.role = (u.user_info && u.user_info.user_role) || "";
        me.teams = (u.teams || []).map((t) => t.team_id);
      } catch { /* a key may not read its user */ }
    }
    me.admin = me.role === "proxy_admin" || me.role === "proxy_admin_viewer";
    me.viewer = me.role === "proxy_admin_viewer";
    return me;
  } catch (err) {
    if (err.status === 400) {
      // No key record: the master key.
      return { admin: true, viewer: false, userID: "", teamID: "", role: "proxy_admin", label: "master key", teams: [] };
    }
    throw err;
  }
}

async function signIn(key) {
  state.key = key;
  state.me = await whoami();
  sessionStorage.setItem(KEY, key);
}

function signOut() {
  sessionStorage.removeItem(KEY);
  state.key = null;
  state.me = null;
  history.replaceState(null, "", location.pathname);
  render();
}

// ---- pages -----------------------------------------------------------------------------

const pages = {
  overview: { title: "Overview", render: overviewPage },
  keys: { title: "Keys", render: keysPage },
  teams: { title: "Teams", render: teamsPage },
  users: { title: "Users", render: usersPage, admin: true },
  models: { title: "Models", render: modelsPage },
  logs: { title: "Spend logs", render: logsPage },
};

async function render() {
  const signedIn = !!state.me;
  $("#signin").hidden = signedIn;
  $("#nav").hidden = !signedIn;
  $("#signout").hidden = !signedIn;
  $("#page").hidden = !signedIn;
  $("#who").textContent = signedIn ? `${state.me.label}${state.me.role ? " · " + state.me.role : ""}` : "";
  if (!signedIn) {
    $("#signin-key").focus();
    return;
  }
  for (const a of document.querySelectorAll("[data-admin]")) a.hidden = !state.me.admin;
  let name = location.hash.slice(1) || "overview";
  if (!pages[name] || (pages[name].admin && !state.me.admin)) name = "overview";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === "#" + name) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const page = $("#page");
  // A page still loading when another is asked for must not replace it when it arrives.
  const seq = ++render.seq;
  page.replaceChildren(el("h1", { text: pages[name].title }), el("p", { class: "muted", text: "Loading…" }));
  document.title = pages[name].title + " · llmgate console";
  try {
    const body = await pages[name].render();
    if (seq === render.seq) page.replaceChildren(el("h1", { text: pages[name].title }), body);
  } catch (err) {
    if (seq !== render.seq) return;
    if (err.status === 401) { signOut(); return; }
    page.replaceChildren(el("h1", { text: pages[name].title }), errorBox(err));
  }
}

render.seq = 0;

// ---- overview ----------------------------------------------------------------------------

function stat(label, value, spend, max, note) {
  return el("div", { class: "card stat" },
    el("div", { class: "label", text: label }),
    el("div", { class: "value", text: value }),
    max !== undefined ? meter(spend, max) : null,
    max !== undefined ? el("div", { class: "muted", text: max ? `budget ${money(max)}` : "no budget" }) : null,
    note ? el("div", { class: "muted", text: note }) : null);
}

const ratio = (x) => (x.max_budget ? x.spend / x.max_budget : -1);

const isoDay = (d) => d.toISOString().slice(0, 10);

// spendRange is the days the admin overview reads: the last 30, this week (from Monday) and
// this month, all UTC as the rollups are.
function spendRange(now = new Date()) {
  const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
  const monday = new Date(today); monday.setUTCDate(today.getUTCDate() - ((today.getUTCDay() + 6) % 7));
  const month = new Date(Date.UTC(today.getUTCFullYear(), today.getUTCMonth(), 1));
  const chartFrom = new Date(today); chartFrom.setUTCDate(today.getUTCDate() - 29);
  const from = new Date(Math.min(monday, month, chartFrom));
  const days = [];
  for (let d = new Date(chartFrom); d <= today; d.setUTCDate(d.getUTCDate() + 1)) days.push(isoDay(d));
  return { from: isoDay(from), to: isoDay(today), today: isoDay(today), week: isoDay(monday), month: isoDay(month), days };
}

// spendSince adds up /spend/daily results from a day on.
function spendSince(results, day) {
  return results.filter((r) => r.date >= day).reduce((a, r) => ({ spend: a.spend + r.total.spend, calls: a.calls + r.total.api_requests }), { spend: 0, calls: 0 });
}

// dayChart draws a stacked column per day as SVG (classes, not inline styles), a legend and
// the figures as a table.
function dayChart(title, days, series, value, fmt) {
  const id = "chart-" + title.replace(/\W+/g, "-").toLowerCase();
  const ns = "http://www.w3.org/2000/svg";
  const width = 620, height = 180, left = 84, bottom = 18;
  const totals = days.map((d) => series.reduce((s, x) => s + (value(x, d) || 0), 0));
  const max = Math.max(0, ...totals) || 1;
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + bottom}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-labelledby", id);
  const text = (x, y, t, anchor) => {
    const e = document.createElementNS(ns, "text");
    e.setAttribute("x", String(x)); e.setAttribute("y", String(y));
    if (anchor) e.setAttribute("text-anchor", anchor);
    e.textContent = t;
    return e;
  };
  svg.append(text(left - 6, 12, fmt(max), "end"), text(left - 6, height, fmt(0), "end"));
  const colW = (width - left) / days.length;
  days.forEach((d, i) => {
    let y = height;
    series.forEach((x, si) => {
      const v = value(x, d) || 0;
      if (v <= 0) return;
      const h = ((height - 4) * v) / max;
      y -= h;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("class", "s" + (x.cls ?? si % 6));
      r.setAttribute("x", String(left + i * colW + 1)); r.setAttribute("y", String(y));
      r.setAttribute("width", String(Math.max(1, colW - 2))); r.setAttribute("height", String(h));
      svg.append(r);
    });
    const last = i === days.length - 1;
    if (last || (i % 7 === (days.length - 1) % 7 && i < days.length - 3)) svg.append(text(last ? width : left + i * colW + colW / 2, height + bottom - 2, d.slice(5), last ? "end" : "middle"));
  });
  const legend = el("ul", { class: "legend" }, series.map((x, si) => el("li", {}, el("span", { class: "swatch s" + (x.cls ?? si % 6), "aria-hidden": "true" }), x.label)));
  const table = el("table", {},
    el("thead", {}, el("tr", {}, el("th", { text: "date" }), series.map((x) => el("th", { class: "num", text: x.label })))),
    el("tbody", {}, days.filter((_, i) => totals[i] > 0).map((d) => el("tr", {}, el("td", { text: d }), series.map((x) => el("td", { class: "num", text: fmt(value(x, d) || 0) }))))));
  return el("div", { class: "card chart wide" },
    el("h2", { id, text: title }),
    totals.some((t) => t > 0) ? [svg, legend, el("details", {}, el("summary", { text: "Data" }), el("div", { class: "table-wrap" }, table))] : el("p", { class: "muted", text: "Nothing yet." }));
}

// groupSeries turns /spend/daily results into the top five ids (by spend over the range) and
// "other" (everything else: smaller ids, ids folded by the rollups, calls without an id).
function groupSeries(results, label, tagged) {
  const spendOf = {};
  for (const r of results) for (const [id, f] of Object.entries(r.ids || {})) spendOf[id] = (spendOf[id] || 0) + f.spend;
  const top = Object.keys(spendOf).sort((a, b) => spendOf[b] - spendOf[a]).slice(0, 5);
  const byDay = Object.fromEntries(results.map((r) => [r.date, r]));
  const series = top.map((id) => ({ label: label(id), fig: (d) => (byDay[d] && byDay[d].ids && byDay[d].ids[id]) || null }));
  series.push({ label: "other", cls: 5, fig: (d) => {
    const r = byDay[d];
    if (!r) return null;
    const rest = (k) => {
      // A call counts under each of its tags, so the total is no sum of tags: add up the rest.
      if (tagged) return Object.entries(r.ids || {}).reduce((sum, [id, f]) => sum + (top.includes(id) ? 0 : f[k] || 0), r.other[k] || 0);
      return Math.max(0, r.total[k] - top.reduce((sum, id) => sum + ((r.ids && r.ids[id] && r.ids[id][k]) || 0), 0));
    };
    return { spend: rest("spend"), api_requests: rest("api_requests") };
  } });
  return series;
}

const groups = {
  model: { label: "model", name: (id) => id },
  team: { label: "team", name: (id, ctx) => ctx.teamName[id] || id },
  api_key: { label: "key", name: (id, ctx) => ctx.keyName[id] || "key " + id.slice(0, 8) + "…" },
  tag: { label: "tag", name: (id) => id },
};

// dayCharts draws the spend and calls per day of /spend/daily results, by group.
function dayCharts(range, results, group, ctx) {
  const series = groupSeries(results, (id) => groups[group].name(id, ctx), group === "tag");
  return [
    dayChart(`Spend per day by ${groups[group].label}`, range.days, series, (x, d) => (x.fig(d) || {}).spend, money),
    dayChart(`Calls per day by ${groups[group].label}`, range.days, series, (x, d) => (x.fig(d) || {}).api_requests, num),
  ];
}

const daily = (range, params) => api("GET", "spend/daily" + qs({ ...params, start_date: range.from, end_date: range.to }));

// scopedResults reads the days of each id alone (/spend/daily?<param>=<id>, which a
// non-admin may ask for what it may see) and merges them into the group_by answer's shape:
// per day the ids, and as total the whole's (say, the user's) when given, else the ids' sum.
async function scopedResults(range, param, ids, whole) {
  const answers = await Promise.all(ids.map((id) => daily(range, { [param]: id })));
  const byDay = {};
  const day = (d) => (byDay[d] ||= { date: d, total: { spend: 0, api_requests: 0 }, ids: {}, other: { spend: 0, api_requests: 0 } });
  for (const a of answers) {
    for (const r of a.results) {
      const d = day(r.date);
      Object.assign(d.ids, r.ids);
      if (!whole) { d.total.spend += r.total.spend; d.total.api_requests += r.total.api_requests; }
    }
  }
  if (whole) for (const r of whole) day(r.date).total = r.total;
  return Object.values(byDay).sort((a, b) => (a.date < b.date ? -1 : 1));
}

// sha256 is the hex digest of a key, the id its spend is kept under, so a key without a user
// asks for its own days without its value in a URL.
async function sha256(s) {
  const d = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s));
  return Array.from(new Uint8Array(d), (b) => b.toString(16).padStart(2, "0")).join("");
}

const topSpenders = (results, n) => {
  const spend = {};
  for (const r of results) for (const [id, f] of Object.entries(r.ids || {})) spend[id] = (spend[id] || 0) + f.spend;
  return Object.keys(spend).sort((a, b) => spend[b] - spend[a]).slice(0, n);
};

const nearFirst = (xs) => xs.filter((x) => x.max_budget).sort((a, b) => ratio(b) - ratio(a));

async function overviewPage() {
  const me = state.me;
  const out = el("div");
  const cards = el("div", { class: "grid" });
  out.append(cards);
  const range = spendRange();
  const period = (label, results, day) => {
    const s = spendSince(results, day);
    return stat(label, money(s.spend), undefined, undefined, `${num(s.calls)} call${s.calls === 1 ? "" : "s"}`);
  };
  const select = el("select", { id: "group-by" });
  const charts = el("div", { class: "charts" });
  let keys, teams, drawCharts, note;
  if (me.admin) {
    // The newest 100 keys, and their number counted up to 1,000 (a cursor page: counting every
    // key would read them all).
    const keyPage = await api("GET", withCursor("key/list" + qs({ return_full_object: "true", size: 100, count: "true" }), ""));
    keys = keyPage.keys || [];
    const [global, proxy, keyDays, teamDays] = await Promise.all([daily(range, { group_by: "global" }), api("GET", "global/spend"),
      daily(range, { group_by: "api_key" }), daily(range, { group_by: "team" })]);
    cards.append(period("Spend today (UTC)", global.results, range.today), period("Spend this week", global.results, range.week),
      period("Spend this month", global.results, range.month),
      proxy.max_budget === null ? stat("Proxy budget", money(proxy.spend), undefined, undefined, "none set · spend of the last 30 days")
        : stat("Proxy budget", money(proxy.spend), proxy.spend, proxy.max_budget, proxy.budget_reset_at ? "resets " + date(proxy.budget_reset_at) : "never resets"),
      keyPage.total_count_capped ? stat("Keys", num(keyPage.total_count) + "+", undefined, undefined, "counted up to " + num(keyPage.total_count))
        : stat("Keys", num(keyPage.total_count)));
    // Keys and teams nearest their budgets: among the 20 that spent most over the range (from
    // the rollups) and the 100 newest keys and first 100 teams, so no request reads them all.
    const knownKeys = new Set(keys.map((k) => k.token));
    const infos = await Promise.all(topSpenders(keyDays.results, 20).filter((id) => !knownKeys.has(id))
      .map((id) => api("GET", "key/info" + qs({ key: id })).then((r) => ({ ...r.info, token: id }), () => null)));
    keys = keys.concat(infos.filter(Boolean));
    teams = (await api("GET", withCursor("team/list?size=100", ""))).teams;
    const knownTeams = new Set(teams.map((t) => t.team_id));
    const more = topSpenders(teamDays.results, 20).filter((id) => !knownTeams.has(id));
    if (more.length) teams = teams.concat((await api("GET", "team/list" + qs({ team_ids: more.join(",") }))).teams);
    const ctx = { teamName: Object.fromEntries(teams.map((t) => [t.team_id, t.team_alias || t.team_id])),
      keyName: Object.fromEntries(keys.map((k) => [k.token, k.key_alias || k.key_name])) };
    select.append(...Object.entries(groups).map(([v, g]) => el("option", { value: v, text: g.label })));
    const read = { api_key: keyDays.results, team: teamDays.results };
    drawCharts = async () => dayCharts(range, read[select.value] || (await daily(range, { group_by: select.value })).results, select.value, ctx);
    note = global.rolled_through ? `Daily figures from the rollups through ${date(global.rolled_through)}, later hours from the spend logs.` : "Daily figures from the spend logs (no rollup yet).";
  } else {
    // A user sees their own keys and teams: the user's days (or, for a key without a user,
    // the key's), each of their five keys that spent most, and each of their teams.
    teams = await listTeams();
    keys = me.userID ? ((await api("GET", "key/list" + qs({ return_full_object: "true", size: 100, user_id: me.userID }))).keys || []) : [];
    const own = (await api("GET", "key/info")).info;
    const ownHash = await sha256(state.key);
    if (!keys.some((k) => k.token === ownHash)) keys.push({ ...own, token: ownHash });
    const mine = await daily(range, me.userID ? { user_id: me.userID } : { api_key: ownHash });
    cards.append(period("Your spend today (UTC)", mine.results, range.today), period("Your spend this week", mine.results, range.week),
      period("Your spend this month", mine.results, range.month), stat("This key's spend", money(own.spend), own.spend, own.max_budget || 0));
    for (const t of teams.slice(0, 5)) cards.append(stat(`Team ${t.team_alias || t.team_id}`, money(t.spend), t.spend, t.max_budget || 0));
    const ctx = { teamName: Object.fromEntries(teams.map((t) => [t.team_id, t.team_alias || t.team_id])),
      keyName: Object.fromEntries(keys.map((k) => [k.token, k.key_alias || k.key_name])) };
    const byKey = scopedResults(range, "api_key", keys.slice().sort((a, b) => (b.spend || 0) - (a.spend || 0)).slice(0, 5).map((k) => k.token), me.userID ? mine.results : null);
    const byTeam = scopedResults(range, "team_id", teams.slice().sort((a, b) => (b.spend || 0) - (a.spend || 0)).slice(0, 5).map((t) => t.team_id), null);
    select.append(el("option", { value: "api_key", text: "key" }), teams.length ? el("option", { value: "team", text: "team" }) : null);
    drawCharts = async () => dayCharts(range, await (select.value === "team" ? byTeam : byKey), select.value, ctx);
    note = "Your keys' and teams' days: from the rollups, and the hours not rolled yet from their own spend logs.";
  }
  const draw = async () => {
    try { charts.replaceChildren(...(await drawCharts())); } catch (err) { charts.replaceChildren(errorBox(err)); }
  };
  select.addEventListener("change", draw);
  await draw();
  out.append(el("div", { class: "row" }, el("div", {}, el("label", { for: "group-by", text: "Charts by" }), select)), charts, el("p", { class: "muted", text: note }));
  const near = (xs, name) => nearFirst(xs).slice(0, 5)
    .map((x) => el("tr", {}, el("td", { text: name(x) }), el("td", { class: "num", text: money(x.spend) }),
      el("td", { class: "num", text: money(x.max_budget) }), el("td", {}, meter(x.spend, x.max_budget))));
  const nearTable = (title, rows, note) => el("div", { class: "card" }, el("h2", { text: title }),
    rows.length ? el("div", { class: "table-wrap" }, el("table", {},
      el("thead", {}, el("tr", {}, el("th", { text: "name" }), el("th", { class: "num", text: "spend" }), el("th", { class: "num", text: "budget" }), el("th", { text: "used" }))),
      el("tbody", {}, rows))) : el("p", { class: "muted", text: "None with a budget." }),
    note ? el("p", { class: "muted", text: note }) : null);
  out.append(el("div", { class: "grid" },
    nearTable("Keys nearest their budget", near(keys, (k) => k.key_alias || k.key_name),
      me.admin ? "Among the 20 keys that spent most in the last 30 days and the 100 newest." : "Among your 100 newest keys."),
    nearTable("Teams nearest their budget", near(teams, (t) => t.team_alias || t.team_id),
      me.admin ? "Among the 20 teams that spent most in the last 30 days and the first 100." : "")));
  return out;
}

// ---- keys ------------------------------------------------------------------------------

// keyFields are the /key/generate and /key/update parameters the form offers.
const keyFields = [
  ["key_alias", "text", "Alias", "unique name"],
  ["team_id", "team", "Team"],
  ["user_id", "text", "User ID"],
  ["models", "list", "Models", "comma-separated; empty: all"],
  ["max_budget", "number", "Max budget (USD)"],
  ["budget_duration", "text", "Budget duration", "e.g. 30d, 1mo, 24h"],
  ["soft_budget", "number", "Soft budget (USD)"],
  ["duration", "text", "Expires after", "e.g. 30d; empty: never", true],
  ["tpm_limit", "int", "TPM limit"],
  ["rpm_limit", "int", "RPM limit"],
  ["max_parallel_requests", "int", "Max parallel requests"],
  ["tags", "list", "Tags", "comma-separated"],
  ["rotation_interval", "text", "Rotation interval", "e.g. 30d (with auto-rotate)"],
  ["auto_rotate", "bool", "Auto-rotate"],
  ["blocked", "bool", "Blocked"],
  ["key", "text", "Custom key value", "sk-…; empty: generated", true],
  ["metadata", "json", "Metadata", "JSON object"],
  ["aliases", "json", "Model aliases", '{"gpt-4": "gpt-4o"}'],
  ["model_max_budget", "json", "Per-model budgets", '{"gpt-4o": {"budget_limit": 5, "time_period": "30d"}}'],
  ["model_rpm_limit", "json", "Per-model RPM", '{"gpt-4o": 10}'],
  ["model_tpm_limit", "json", "Per-model TPM", '{"gpt-4o": 10000}'],
  ["budget_limits", "json", "Budget windows", '[{"budget_duration": "1d", "max_budget": 5}]'],
];

function fieldInput(f, value, teams) {
  const [name, type, label, hint] = f;
  const id = "f-" + name;
  if (type === "bool") {
    return el("div", { class: "checkbox" }, el("input", { id, name, type: "checkbox", checked: !!value }), el("label", { for: id, text: label }));
  }
  let input;
  if (type === "team") {
    input = teamChoice(id, name, teams, value);
  } else if (type === "json") {
    input = el("textarea", { id, name, placeholder: hint || "" });
    if (value !== undefined && value !== null && !(typeof value === "object" && Object.keys(value).length === 0)) input.value = JSON.stringify(value);
  } else {
    input = el("input", { id, name, type: type === "number" || type === "int" ? "number" : "text", step: type === "int" ? "1" : type === "number" ? "any" : null, placeholder: type === "list" ? "" : hint || "" });
    if (value !== undefined && value !== null) input.value = Array.isArray(value) ? value.join(", ") : value;
  }
  return el("div", {}, el("label", { for: id }, label, hint && type !== "json" ? el("span", { class: "hint", text: " " + hint }) : null), input);
}

// readFields turns the form into a request body: empty fields are left out on create, and
// on edit only changed ones are sent.
function readFields(form, fields, before) {
  const body = {};
  for (const [name, type, label] of fields) {
    const input = form.elements[name];
    if (!input) continue;
    let v;
    if (type === "bool") v = input.checked;
    else if (input.value.trim() === "") v = undefined;
    else if (type === "number") v = Number(input.value);
    else if (type === "int") v = parseInt(input.value, 10);
    else if (type === "list") v = input.value.split(",").map((s) => s.trim()).filter(Boolean);
    else if (type === "json") {
      try { v = JSON.parse(input.value); } catch { throw new Error(`${label}: not valid JSON`); }
    } else v = input.value.trim();
    if (before) {
      const old = before[name];
      if (v === undefined && (old === undefined || old === null || old === "")) continue;
      if (JSON.stringify(v) === JSON.stringify(old)) continue;
      if (v === undefined) v = type === "list" ? [] : type === "json" ? {} : null;
    } else if (v === undefined || (type === "bool" && v === false)) continue;
    body[name] = v;
  }
  return body;
}

function dialog(title, ...content) {
  const d = el("dialog", { "aria-labelledby": "dlg-title" }, el("h2", { id: "dlg-title", text: title }), ...content);
  d.addEventListener("close", () => d.remove());
  document.body.append(d);
  d.showModal();
  return d;
}

// showSecret shows a new key once, with a copy button; it is never stored.
function showSecret(title, key, note) {
  const box = el("p", { class: "secret", id: "new-key", text: key });
  const d = dialog(title,
    el("p", { text: note || "Copy this key now: it is shown only once." }),
    box,
    el("div", { class: "actions" },
      el("button", { type: "button", onclick: async () => {
        try { await navigator.clipboard.writeText(key); toast("Copied"); } catch {
          const r = document.createRange(); r.selectNodeContents(box); getSelection().removeAllRanges(); getSelection().addRange(r); toast("Selected: press Ctrl+C");
        }
      } }, "Copy key"),
      el("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Done")));
}

// listTeams is the teams a page offers by name: a user's own, an admin's first 100 (others
// are named by id, and read by id when needed: /team/list?team_ids=).
async function listTeams() {
  const me = state.me;
  if (me.admin) return (await api("GET", withCursor("team/list?size=100", ""))).teams;
  // A user's teams by id (their user record lists them), not a list of every team.
  if (me.userID) return me.teams.length ? (await api("GET", "team/list" + qs({ user_id: me.userID, team_ids: me.teams.slice(0, 100).join(",") }))).teams : [];
  // A key without a user: its own team.
  return me.teamID ? [(await api("GET", "team/info" + qs({ team_id: me.teamID }))).team_info] : [];
}

// teamChoice is a team field: type an id or pick a listed team by name.
function teamChoice(id, name, teams, value) {
  const list = id + "-teams";
  return [el("input", { id, name, type: "search", list, value: value || "", placeholder: "team id", autocomplete: "off" }),
    el("datalist", { id: list }, teams.map((t) => el("option", { value: t.team_id, label: t.team_alias || t.team_id })))];
}

function keyForm(title, teams, before, submit) {
  const fields = before ? keyFields.filter((f) => !f[4]) : keyFields;
  const error = el("p", { class: "error", role: "alert" });
  const form = el("form", {},
    el("div", { class: "form-grid" }, fields.map((f) => fieldInput(f, before ? before[f[0]] : undefined, teams))),
    error,
    el("div", { class: "actions" }, el("button", { type: "submit" }, before ? "Save" : "Create key"),
      el("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel")));
  const d = dialog(title, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    error.textContent = "";
    try {
      await submit(readFields(form, fields, before), d);
    } catch (err) { error.textContent = err.message; }
  });
}

async function keysPage() {
  const me = state.me;
  const teams = await listTeams();
  const filters = { team_id: "", user_id: me.admin ? "" : me.userID, key_alias: "" };
  const pg = cursorPages();
  const out = el("div");
  const tableBox = el("div");
  const alias = el("input", { id: "flt-alias", type: "search", placeholder: "exact alias" });
  const team = teamChoice("flt-team", "team", teams, "");
  const user = el("input", { id: "flt-user", type: "search", value: filters.user_id, disabled: !me.admin });
  const filterForm = el("form", { class: "card row", role: "search", "aria-label": "Filter keys" },
    el("div", {}, el("label", { for: "flt-alias", text: "Alias" }), alias),
    el("div", {}, el("label", { for: "flt-team" }, "Team", el("span", { class: "hint", text: " empty: all" })), team),
    el("div", {}, el("label", { for: "flt-user", text: "User ID" }), user),
    el("div", {}, el("button", { type: "submit" }, "Filter")),
    el("div", {}, el("button", { type: "button", onclick: () => keyForm("Create key", teams, null, async (body, d) => {
      const res = await api("POST", "key/generate", body);
      d.close();
      showSecret("New key", res.key);
      load();
    }) }, "Create key")));
  filterForm.addEventListener("submit", (ev) => {
    ev.preventDefault();
    Object.assign(filters, { key_alias: alias.value.trim(), team_id: team[0].value.trim(), user_id: user.value.trim() });
    pg.reset();
    load();
  });
  out.append(filterForm, tableBox);

  async function act(label, fn) {
    try { await fn(); toast(label); load(); } catch (err) { toast(err.message); }
  }

  async function load() {
    tableBox.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    let res;
    try {
      const path = "key/list" + qs({ return_full_object: "true", size: PAGE_SIZE, team_id: filters.team_id, user_id: filters.user_id, key_alias: filters.key_alias });
      // An alias names one key; otherwise cursor pages, which never count every key.
      res = await api("GET", filters.key_alias ? path : withCursor(path, pg.cursor));
    } catch (err) { tableBox.replaceChildren(errorBox(err)); return; }
    const teamName = Object.fromEntries(teams.map((t) => [t.team_id, t.team_alias || t.team_id]));
    const unnamed = [...new Set((res.keys || []).map((k) => k.team_id).filter((id) => id && !(id in teamName)))];
    if (me.admin && unnamed.length) {
      try {
        for (const t of (await api("GET", "team/list" + qs({ team_ids: unnamed.join(",") }))).teams) teamName[t.team_id] = t.team_alias || t.team_id;
      } catch { /* named by id */ }
    }
    const rows = (res.keys || []).map((k) => el("tr", {},
      el("td", {}, el("strong", { text: k.key_alias || "—" }), el("div", { class: "muted", text: k.key_name })),
      el("td", { class: "hide-sm", text: k.team_id ? teamName[k.team_id] || k.team_id : "—" }),
      el("td", { class: "hide-sm", text: k.user_id || "—" }),
      el("td", { class: "num", text: money(k.spend) }),
      el("td", { class: "num", text: money(k.max_budget) }),
      el("td", {}, el("span", { class: "badge " + (k.blocked ? "blocked" : "active"), text: k.blocked ? "blocked" : "active" })),
      el("td", { class: "hide-sm", text: k.expires ? date(k.expires) : "never" }),
      el("td", {}, el("div", { class: "actions" },
        el("button", { type: "button", class: "small secondary", "aria-label": `Edit ${k.key_alias || k.key_name}`, onclick: () => keyForm("Edit key " + (k.key_alias || k.key_name), teams, k, async (body, d) => {
          await api("POST", "key/update", { key: k.token, ...body }); d.close(); toast("Saved"); load();
        }) }, "Edit"),
        el("button", { type: "button", class: "small secondary", "aria-label": `${k.blocked ? "Unblock" : "Block"} ${k.key_alias || k.key_name}`,
          onclick: () => act(k.blocked ? "Unblocked" : "Blocked", () => api("POST", k.blocked ? "key/unblock" : "key/block", { key: k.token })) }, k.blocked ? "Unblock" : "Block"),
        el("button", { type: "button", class: "small secondary", "aria-label": `Regenerate ${k.key_alias || k.key_name}`, onclick: () => regenerate(k) }, "Regenerate"),
        el("button", { type: "button", class: "small danger", "aria-label": `Delete ${k.key_alias || k.key_name}`, onclick: () => {
          if (confirm(`Delete key ${k.key_alias || k.key_name}? Calls with it stop at once.`)) act("Deleted", () => api("POST", "key/delete", { keys: [k.token] }));
        } }, "Delete")))));
    pg.next = res.next_cursor || null;
    tableBox.replaceChildren(
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "Keys" },
        el("thead", {}, el("tr", {}, ["Alias", "Team", "User", "Spend", "Budget", "Status", "Expires", "Actions"].map((h, i) =>
          el("th", { scope: "col", class: [3, 4].includes(i) ? "num" : [1, 2, 6].includes(i) ? "hide-sm" : null, text: h })))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "8", class: "muted", text: "No keys." }))))),
      pagerNav("Key pages", "key-page", pg, `Page ${pg.page} · ${plural(rows.length, "key")}${pg.next ? "" : " · last page"}`, load));
  }

  function regenerate(k) {
    const error = el("p", { class: "error", role: "alert" });
    const grace = el("input", { id: "f-grace", type: "text", placeholder: "e.g. 24h; empty: none" });
    const form = el("form", {},
      el("p", { text: "A new key replaces this one. During the grace period the old key keeps working." }),
      el("label", { for: "f-grace", text: "Grace period" }), grace, error,
      el("div", { class: "actions" }, el("button", { type: "submit" }, "Regenerate"),
        el("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel")));
    const d = dialog("Regenerate " + (k.key_alias || k.key_name), form);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try {
        const body = { key: k.token };
        if (grace.value.trim()) body.grace_period = grace.value.trim();
        const res = await api("POST", "key/regenerate", body);
        d.close();
        showSecret("Regenerated key", res.key);
        load();
      } catch (err) { error.textContent = err.message; }
    });
  }

  await load();
  return out;
}

// ---- teams -----------------------------------------------------------------------------

// teamEditFields are the /team/update parameters the team form offers.
const teamEditFields = [
  ["team_alias", "text", "Team name"],
  ["max_budget", "number", "Max budget (USD)"],
  ["soft_budget", "number", "Soft budget (USD)"],
  ["budget_duration", "text", "Budget duration", "e.g. 30d, 1mo"],
  ["tpm_limit", "int", "TPM limit"],
  ["rpm_limit", "int", "RPM limit"],
  ["max_parallel_requests", "int", "Max parallel requests"],
  ["models", "list", "Models", "comma-separated; empty: all"],
  ["budget_limits", "json", "Budget windows", '[{"budget_duration": "1d", "max_budget": 5}]'],
];

async function teamsPage() {
  const me = state.me;
  const out = el("div");
  const box = el("div");
  const pg = cursorPages();
  if (me.admin && !me.viewer) {
    out.append(el("div", { class: "actions" }, el("button", { type: "button", onclick: () => {
      const fields = [["team_alias", "text", "Team name"], ["max_budget", "number", "Max budget (USD)"], ["budget_duration", "text", "Budget duration", "e.g. 30d"],
        ["models", "list", "Models", "comma-separated"], ["tpm_limit", "int", "TPM limit"], ["rpm_limit", "int", "RPM limit"], ["team_member_budget", "number", "Budget per member (USD)"]];
      simpleForm("Create team", fields, async (body) => { await api("POST", "team/new", body); pg.reset(); load(); });
    } }, "Create team")));
  }
  out.append(box);

  const change = (label, fn) => async () => { try { await fn(); toast(label); load(); } catch (err) { toast(err.message); } };

  function teamCard(t) {
    const name = t.team_alias || t.team_id;
    const canAdmin = me.admin && !me.viewer || (t.members_with_roles || []).some((m) => m.user_id === me.userID && m.role === "admin");
    const budgets = Object.fromEntries((t.team_memberships || []).map((m) => [m.user_id, m]));
    const members = (t.members_with_roles || []).map((m) => {
      const ms = budgets[m.user_id] || {};
      const budget = ms.litellm_budget_table && ms.litellm_budget_table.max_budget;
      return el("tr", {},
        el("td", { text: m.user_id || m.user_email || "—" }),
        el("td", {}, el("span", { class: "badge role", text: m.role })),
        el("td", { class: "num", text: money(ms.spend) }),
        el("td", { class: "num", text: budget === undefined || budget === null ? "—" : money(budget) }),
        el("td", {}, canAdmin && m.user_id !== me.userID ? el("div", { class: "actions" },
          el("button", { type: "button", class: "small secondary", "aria-label": `Edit ${m.user_id} in ${name}`, onclick: () =>
            simpleForm(`Member ${m.user_id} of ${name}`, [["role", "role", "Role"], ["max_budget_in_team", "number", "Budget in this team (USD)", "empty: none"]], async (body) => {
              await api("POST", "team/member_update", { team_id: t.team_id, user_id: m.user_id, ...body });
              toast("Saved");
              load();
            }, { role: m.role, max_budget_in_team: budget }) }, "Edit"),
          el("button", { type: "button", class: "small danger", "aria-label": `Remove ${m.user_id} from ${name}`,
            onclick: change("Removed", () => api("POST", "team/member_delete", { team_id: t.team_id, user_id: m.user_id })) }, "Remove")) : null));
    });
    return el("section", { class: "card", "aria-label": `Team ${name}` },
      el("h2", { text: name }),
      el("p", { class: "muted", text: `id ${t.team_id}${t.blocked ? " · blocked" : ""}` }),
      el("div", { class: "grid" },
        stat("Spend", money(t.spend), t.spend, t.max_budget || 0),
        el("div", { class: "card stat" }, el("div", { class: "label", text: "Budget resets" }),
          el("div", { class: "value", text: t.budget_duration || "never" }), el("div", { class: "muted", text: t.budget_reset_at ? "next " + date(t.budget_reset_at) : "" })),
        el("div", { class: "card stat" }, el("div", { class: "label", text: "Limits" }),
          el("div", { class: "muted", text: `TPM ${t.tpm_limit ?? "—"} · RPM ${t.rpm_limit ?? "—"}` }),
          el("div", { class: "muted", text: `models: ${(t.models || []).length ? t.models.join(", ") : "all"}` }))),
      el("h2", { text: "Members" }),
      el("div", { class: "table-wrap" }, el("table", {}, el("thead", {}, el("tr", {}, el("th", { text: "user" }), el("th", { text: "role" }),
        el("th", { class: "num", text: "spend in team" }), el("th", { class: "num", text: "budget in team" }), el("th", { text: "" }))),
        el("tbody", {}, members))),
      canAdmin ? el("div", { class: "actions" },
        el("button", { type: "button", class: "secondary", "aria-label": `Edit team ${name}`, onclick: () =>
          simpleForm(`Edit team ${name}`, teamEditFields, async (body) => {
            await api("POST", "team/update", { team_id: t.team_id, ...body });
            toast("Saved");
            load();
          }, t) }, "Edit team"),
        el("button", { type: "button", class: "secondary", onclick: () =>
          simpleForm(`Add member to ${name}`, [["user_id", "text", "User ID"], ["role", "role", "Role"]], async (body) => {
            await api("POST", "team/member_add", { team_id: t.team_id, member: [{ user_id: body.user_id, role: body.role || "user" }] });
            load();
          }) }, "Add member")) : null);
  }

  async function load() {
    let teams;
    try {
      if (me.admin) {
        // Admins page through every team, ten at a time, never all of them at once.
        const res = await api("GET", withCursor("team/list?size=10", pg.cursor));
        teams = res.teams;
        pg.next = res.next_cursor || null;
      } else teams = await listTeams();
    } catch (err) { box.replaceChildren(errorBox(err)); return; }
    box.replaceChildren(...(teams.length ? teams.map(teamCard) : [el("p", { class: "muted", text: "No teams you can see." })]),
      me.admin ? pagerNav("Team pages", "team-page", pg, `Page ${pg.page} · ${plural(teams.length, "team")}`, load) : "");
  }

  await load();
  return out;
}

function simpleForm(title, fields, submit, before) {
  const error = el("p", { class: "error", role: "alert" });
  const inputs = fields.map((f) => f[1] === "role"
    ? el("div", {}, el("label", { for: "f-role", text: "Role" }), el("select", { id: "f-role", name: "role" },
      ["user", "admin"].map((r) => el("option", { value: r, selected: before && before.role === r, text: r }))))
    : fieldInput(f, before ? before[f[0]] : undefined, []));
  const form = el("form", {}, el("div", { class: "form-grid" }, inputs), error,
    el("div", { class: "actions" }, el("button", { type: "submit" }, "Save"), el("button", { type: "button", class: "secondary", onclick: () => d.close() }, "Cancel")));
  const d = dialog(title, form);
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    try {
      const body = readFields(form, fields.filter((f) => f[1] !== "role"), before);
      if (form.elements.role && (!before || form.elements.role.value !== before.role)) body.role = form.elements.role.value;
      await submit(body);
      d.close();
    } catch (err) { error.textContent = err.message; }
  });
}

// ---- users -----------------------------------------------------------------------------

async function usersPage() {
  const out = el("div");
  const box = el("div");
  let page = 1;
  if (!state.me.viewer) {
    out.append(el("div", { class: "actions" }, el("button", { type: "button", onclick: () =>
      simpleForm("Create user", [["user_id", "text", "User ID"], ["user_email", "text", "Email"], ["max_budget", "number", "Max budget (USD)"],
        ["budget_duration", "text", "Budget duration", "e.g. 30d"], ["models", "list", "Models", "comma-separated"]], async (body) => {
        const res = await api("POST", "user/new", body);
        load();
        if (res.key) showSecret("New user's key", res.key);
      }) }, "Create user")));
  }
  out.append(box);
  async function load() {
    const res = await api("GET", "user/list" + qs({ page, page_size: PAGE_SIZE }));
    const users = res.users || [];
    const pages = Math.max(1, res.total_pages || 1);
    box.replaceChildren(el("div", { class: "table-wrap" }, el("table", { "aria-label": "Users" },
      el("thead", {}, el("tr", {}, ["User", "Role", "Teams", "Spend", "Budget", "Resets"].map((h) => el("th", { scope: "col", text: h })))),
      el("tbody", {}, users.map((u) => el("tr", {},
        el("td", {}, el("strong", { text: u.user_id }), el("div", { class: "muted", text: u.user_email || "" })),
        el("td", {}, el("span", { class: "badge role", text: u.user_role || "—" })),
        el("td", { text: (u.teams || []).join(", ") || "—" }),
        el("td", { class: "num", text: money(u.spend) }),
        el("td", { class: "num", text: money(u.max_budget) }),
        el("td", { text: u.budget_duration ? `${u.budget_duration}, next ${date(u.budget_reset_at)}` : "—" })))))),
      el("nav", { class: "pager", "aria-label": "User pages" },
        el("button", { type: "button", class: "secondary", disabled: page <= 1, onclick: () => { page--; load(); } }, "Previous"),
        el("span", { text: `Page ${page} of ${pages} · ${num(res.total)} users` }),
        el("button", { type: "button", class: "secondary", disabled: page >= pages, onclick: () => { page++; load(); } }, "Next")));
  }
  await load();
  return out;
}

// ---- models ----------------------------------------------------------------------------

// modelFields are the parts of a stored deployment the model form edits (prices per 1M tokens).
const modelFields = [
  ["model_name", "text", "Model name", "the group callers ask for"],
  ["model", "text", "Provider model", "e.g. openai/gpt-4o-mini"],
  ["api_base", "text", "API base", "empty: the provider's"],
  ["api_key", "text", "API key reference", "os.environ/NAME; never the key"],
  ["input_per_1m", "number", "Input price per 1M tokens (USD)"],
  ["output_per_1m", "number", "Output price per 1M tokens (USD)"],
  ["rpm", "int", "RPM"],
  ["tpm", "int", "TPM"],
];

// modelForm adds (before null) or edits a stored deployment through /model/new or /model/update.
function modelForm(before, done) {
  const lp = (before && before.litellm_params) || {}, mi = (before && before.model_info) || {};
  const per1M = (v) => (v === undefined || v === null ? undefined : Number((v * 1e6).toPrecision(12)));
  const flat = before ? { model_name: before.model_name, model: lp.model, api_base: lp.api_base, api_key: lp.api_key,
    input_per_1m: per1M(mi.input_cost_per_token), output_per_1m: per1M(mi.output_cost_per_token), rpm: lp.rpm, tpm: lp.tpm } : null;
  simpleForm(before ? `Edit model ${mi.id}` : "Add model", modelFields, async (b) => {
    const params = {}, info = {};
    for (const k of ["model", "api_base", "api_key", "rpm", "tpm"]) if (k in b) params[k] = b[k];
    if ("input_per_1m" in b) info.input_cost_per_token = b.input_per_1m === null ? null : b.input_per_1m / 1e6;
    if ("output_per_1m" in b) info.output_cost_per_token = b.output_per_1m === null ? null : b.output_per_1m / 1e6;
    const body = { litellm_params: params, model_info: info };
    if ("model_name" in b) body.model_name = b.model_name;
    if (before) {
      body.model_info.id = mi.id;
      await api("POST", "model/update", body);
    } else await api("POST", "model/new", body);
    toast("Saved");
    done();
  }, flat);
}

async function modelsPage() {
  const res = await api("GET", "model/info");
  const canEdit = state.me.admin && !state.me.viewer;
  const per1M = (v) => (v === null || v === undefined ? "—" : "$" + (v * 1e6).toFixed(2));
  const groups = {};
  for (const m of res.data || []) (groups[m.model_name] ||= []).push(m);
  const out = el("div");
  out.append(el("p", { class: "muted", text: "Model groups and their deployments, as this key may use them. Provider keys are never shown; models of config.yaml are read-only." }));
  if (canEdit) out.append(el("div", { class: "actions" }, el("button", { type: "button", onclick: () => modelForm(null, render) }, "Add model")));
  for (const [name, deps] of Object.entries(groups)) {
    out.append(el("section", { class: "card", "aria-label": `Model group ${name}` }, el("h2", { text: name }),
      el("div", { class: "table-wrap" }, el("table", {},
        el("thead", {}, el("tr", {}, ["Deployment", "Model", "API base", "Input / 1M", "Output / 1M", "RPM", "TPM", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, deps.map((d) => {
          const lp = d.litellm_params || {}, mi = d.model_info || {};
          const stored = canEdit && mi.db_model;
          return el("tr", {}, el("td", { text: mi.id || "—" }), el("td", { text: lp.model || "—" }), el("td", { text: lp.api_base || "—" }),
            el("td", { class: "num", text: per1M(mi.input_cost_per_token ?? lp.input_cost_per_token) }),
            el("td", { class: "num", text: per1M(mi.output_cost_per_token ?? lp.output_cost_per_token) }),
            el("td", { class: "num", text: num(lp.rpm) }), el("td", { class: "num", text: num(lp.tpm) }),
            el("td", {}, stored ? el("div", { class: "actions" },
              el("button", { type: "button", class: "small secondary", "aria-label": `Edit model ${mi.id}`, onclick: () => modelForm(d, render) }, "Edit"),
              el("button", { type: "button", class: "small danger", "aria-label": `Delete model ${mi.id}`, onclick: async () => {
                if (!confirm(`Delete model ${mi.id}? Calls to it stop within the refresh interval.`)) return;
                try { await api("POST", "model/delete", { id: mi.id }); toast("Deleted"); render(); } catch (err) { toast(err.message); }
              } }, "Delete")) : null));
        }))))));
  }
  if (!Object.keys(groups).length) out.append(el("p", { class: "muted", text: "No models." }));
  return out;
}

// ---- spend logs --------------------------------------------------------------------------

async function logsPage() {
  const out = el("div");
  const box = el("div");
  const today = new Date().toISOString().slice(0, 10);
  const weekAgo = new Date(Date.now() - 6 * 86400e3).toISOString().slice(0, 10);
  const f = (id, label, attrs) => el("div", {}, el("label", { for: id, text: label }), el("input", { id, ...attrs }));
  const form = el("form", { class: "card row", role: "search", "aria-label": "Filter spend logs" },
    f("log-start", "From", { type: "date", value: weekAgo }),
    f("log-end", "To", { type: "date", value: today }),
    f("log-key", "Key hash", { type: "search" }),
    state.me.admin ? f("log-user", "User ID", { type: "search" }) : null,
    f("log-request", "Request ID", { type: "search" }),
    el("div", {}, el("button", { type: "submit" }, "Search")));
  out.append(form, box);
  let logs = [];
  const pg = cursorPages();
  form.addEventListener("submit", (ev) => { ev.preventDefault(); pg.reset(); load(); });

  function show() {
    const rows = logs.map((l) => {
      const tr = el("tr", { class: "clickable", tabindex: "0", "aria-label": `Call ${l.request_id}: open details` },
        el("td", { text: date(l.startTime) }),
        el("td", { text: l.model_group || l.model || "—" }),
        el("td", { class: "hide-sm", text: l.metadata && l.metadata.user_api_key_alias || (l.api_key || "").slice(0, 10) }),
        el("td", { class: "num", text: num(l.total_tokens) }),
        el("td", { class: "num", text: money(l.spend) }),
        el("td", { text: l.status || "—" }));
      const open = () => detail(l);
      tr.addEventListener("click", open);
      tr.addEventListener("keydown", (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } });
      return tr;
    });
    box.replaceChildren(
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "Spend logs" },
        el("thead", {}, el("tr", {}, ["Time", "Model", "Key", "Tokens", "Spend", "Status"].map((h, i) => el("th", { scope: "col", class: i === 2 ? "hide-sm" : i === 3 || i === 4 ? "num" : null, text: h })))),
        el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: "6", class: "muted", text: "No calls in this range." }))))),
      pagerNav("Log pages", "log-page", pg, `Page ${pg.page} · ${plural(logs.length, "call")}${pg.next ? "" : " · last page"}`, load));
  }

  async function load() {
    box.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
    const v = (id) => { const e = $("#" + id, form); return e ? e.value.trim() : ""; };
    try {
      const path = "spend/logs" + qs({ start_date: v("log-start"), end_date: v("log-end"), summarize: "false",
        api_key: v("log-key"), user_id: v("log-user"), request_id: v("log-request"), page_size: 50 });
      // A request id names one call; otherwise cursor pages of 50, newest first.
      const res = await api("GET", v("log-request") ? path : withCursor(path, pg.cursor));
      logs = Array.isArray(res) ? res : res.logs || [];
      pg.next = res.next_cursor || null;
      show();
    } catch (err) { box.replaceChildren(errorBox(err)); }
  }

  function detail(l) {
    const dl = el("dl", { class: "detail" });
    for (const [k, val] of Object.entries(l)) {
      dl.append(el("dt", { text: k }), el("dd", { text: typeof val === "object" && val !== null ? JSON.stringify(val) : String(val) }));
    }
    const d = dialog("Call " + l.request_id, dl, el("div", { class: "actions" }, el("button", { type: "button", onclick: () => d.close() }, "Close")));
  }

  await load();
  return out;
}

// ---- start -------------------------------------------------------------------------------

$("#signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const input = $("#signin-key");
  $("#signin-error").textContent = "";
  try {
    await signIn(input.value.trim());
    input.value = "";
    if (!location.hash) location.hash = "#overview";
    else render();
    $("#main").focus();
  } catch (err) {
    state.key = null;
    $("#signin-error").textContent = err.status === 401 ? "That key is not valid." : err.message;
  }
});
$("#signout").addEventListener("click", signOut);
window.addEventListener("hashchange", render);

(async () => {
  if (state.key) {
    try { state.me = await whoami(); } catch { sessionStorage.removeItem(KEY); state.key = null; }
  }
  render();
})();
