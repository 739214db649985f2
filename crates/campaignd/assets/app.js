// campaignd report page: fetches the admin API and draws the charts as inline SVG. Hand-written, no
// dependencies, no build step; served from the binary.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const COLORS = ["#3b6fd8", "#e0773a", "#2f9e6e", "#c2417a", "#7a5bd6", "#b39a1e", "#2aa3b8", "#8a5a44",
  "#d14b4b", "#5f7a2e", "#9c6fb4", "#4a6078"];

function token() { return sessionStorage.getItem("campaignd-token") || ""; }

async function api(path) {
  const headers = {};
  if (token()) headers["Authorization"] = "Bearer " + token();
  const res = await fetch(path, { headers });
  if (res.status === 401) { const e = new Error("unauthorized"); e.status = 401; throw e; }
  if (!res.ok) { const e = new Error(path + ": HTTP " + res.status); e.status = res.status; throw e; }
  return res.json();
}

function svg(tag, attrs, parent) {
  const n = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  if (parent) parent.appendChild(n);
  return n;
}

function html(tag, attrs, text) {
  const n = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, v);
  if (text !== undefined && text !== null) n.textContent = text;
  return n;
}

function empty(box, message) {
  box.replaceChildren(html("div", { class: "empty" }, message));
}

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function fmt(v) {
  if (v === null || v === undefined) return "–";
  if (Math.abs(v) >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (Math.abs(v) >= 1e4) return (v / 1e3).toFixed(0) + "k";
  return String(Math.round(v * 100) / 100);
}

function pct(v) { return v === null || v === undefined ? "–" : (v * 100).toFixed(2) + "%"; }

function legend(box, names) {
  const l = html("div", { class: "legend" });
  names.forEach((n, i) => {
    const item = html("span");
    const sw = html("i"); sw.style.background = COLORS[i % COLORS.length];
    item.append(sw, document.createTextNode(n));
    l.appendChild(item);
  });
  box.appendChild(l);
}

// Axes and grid for a chart of width w, height h with margins m; y from 0 to ymax.
function frame(root, w, h, m, ymax, yfmt) {
  const g = svg("g", { class: "axes" }, root);
  for (let i = 0; i <= 4; i++) {
    const y = m.t + (h - m.t - m.b) * (1 - i / 4);
    svg("line", { x1: m.l, x2: w - m.r, y1: y, y2: y, stroke: "#e3e6ec" }, g);
    const t = svg("text", { x: m.l - 6, y: y + 4, "text-anchor": "end", "font-size": 11, fill: "#6b7385" }, g);
    t.textContent = yfmt(ymax * i / 4);
  }
  svg("line", { x1: m.l, x2: w - m.r, y1: h - m.b, y2: h - m.b, stroke: "#9aa1ad" }, g);
}

function lineChart(box, series) {
  // series: [{name, points: [{t: ms, v}]}]
  const pts = series.flatMap(s => s.points);
  if (pts.length === 0) return empty(box, "No recomputes recorded yet.");
  const w = 1100, h = 300, m = { l: 56, r: 16, t: 10, b: 28 };
  let t0 = Math.min(...pts.map(p => p.t)), t1 = Math.max(...pts.map(p => p.t));
  if (t0 === t1) { t0 -= 3600e3; t1 += 3600e3; }
  const ymax = niceMax(Math.max(...pts.map(p => p.v)));
  const x = t => m.l + (w - m.l - m.r) * (t - t0) / (t1 - t0);
  const y = v => m.t + (h - m.t - m.b) * (1 - v / ymax);
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "segment sizes over time" });
  frame(root, w, h, m, ymax, fmt);
  for (let i = 0; i <= 4; i++) {
    const t = t0 + (t1 - t0) * i / 4;
    const lab = svg("text", { x: x(t), y: h - 8, "text-anchor": "middle", "font-size": 11, fill: "#6b7385" }, root);
    lab.textContent = new Date(t).toISOString().slice(5, 16).replace("T", " ");
  }
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const sorted = s.points.slice().sort((a, b) => a.t - b.t);
    const d = sorted.map((p, j) => (j ? "L" : "M") + x(p.t).toFixed(1) + " " + y(p.v).toFixed(1)).join(" ");
    svg("path", { d, fill: "none", stroke: color, "stroke-width": 2, class: "series", "data-series": s.name }, root);
    for (const p of sorted) {
      const c = svg("circle", { cx: x(p.t), cy: y(p.v), r: 2.5, fill: color }, root);
      const tip = svg("title", {}, c); tip.textContent = `${s.name}: ${p.v} at ${new Date(p.t).toISOString()}`;
    }
  });
  box.replaceChildren(root);
  legend(box, series.map(s => s.name));
}

function groupedBars(box, groups, keys, value, yfmt, label) {
  // groups: [{name, rows: {key: row}}]; one bar per key within each group.
  const vals = groups.flatMap(g => keys.map(k => value(g.rows[k]))).filter(v => v !== null && v !== undefined);
  if (vals.length === 0) return empty(box, "No performance data yet (metrics pull).");
  const w = 540, h = 260, m = { l: 56, r: 10, t: 10, b: 60 };
  const ymax = niceMax(Math.max(...vals));
  const gw = (w - m.l - m.r) / groups.length, bw = Math.max(3, (gw * 0.8) / keys.length);
  const y = v => m.t + (h - m.t - m.b) * (1 - v / ymax);
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": label });
  frame(root, w, h, m, ymax, yfmt);
  groups.forEach((g, gi) => {
    const gx = m.l + gi * gw + gw * 0.1;
    keys.forEach((k, ki) => {
      const v = value(g.rows[k]);
      if (v === null || v === undefined) return;
      const r = svg("rect", { x: gx + ki * bw, y: y(v), width: bw - 1, height: Math.max(0, h - m.b - y(v)),
        fill: COLORS[ki % COLORS.length], class: "bar" }, root);
      const tip = svg("title", {}, r); tip.textContent = `${g.name} / ${k}: ${yfmt(v)}`;
    });
    const t = svg("text", { x: gx + gw * 0.4, y: h - m.b + 14, "font-size": 10, fill: "#6b7385",
      "text-anchor": "end", transform: `rotate(-30 ${gx + gw * 0.4} ${h - m.b + 14})` }, root);
    t.textContent = g.name;
  });
  box.replaceChildren(root);
  legend(box, keys);
}

function table(box, head, rows) {
  if (rows.length === 0) return empty(box, "Nothing yet.");
  const t = html("table");
  const tr = html("tr");
  head.forEach(h => tr.appendChild(html("th", h.num ? { class: "num" } : {}, h.label)));
  t.appendChild(tr);
  for (const r of rows) {
    const row = html("tr");
    r.forEach((c, i) => {
      const attrs = {};
      if (head[i].num) attrs.class = "num";
      if (c && typeof c === "object") { attrs.class = (attrs.class || "") + " " + c.cls; row.appendChild(html("td", attrs, c.text)); }
      else row.appendChild(html("td", attrs, c));
    });
    t.appendChild(row);
  }
  box.replaceChildren(t);
}

function drawSizes(data) {
  const series = data.segments.map(s => ({ name: s.name, points: s.history.map(p => ({ t: Date.parse(p.at), v: p.size })) }));
  lineChart(document.getElementById("chart-sizes"), series);
}

function drawReport(rows) {
  const segs = [...new Set(rows.map(r => r.segment))].sort();
  const chans = [...new Set(rows.map(r => r.channel))].sort();
  const groups = segs.map(s => ({ name: s, rows: Object.fromEntries(rows.filter(r => r.segment === s).map(r => [r.channel, r])) }));
  groupedBars(document.getElementById("chart-ctr"), groups, chans, r => r ? r.ctr : null, pct, "CTR per segment per channel");
  groupedBars(document.getElementById("chart-cvr"), groups, chans, r => r ? r.cvr : null, pct, "CVR per segment per channel");
}

function drawRuns(runs) {
  const box = document.getElementById("chart-runs");
  const done = runs.filter(r => r.finished_at).slice(0, 60).reverse();
  if (done.length === 0) empty(box, "No finished runs yet.");
  else {
    const w = 1100, h = 160, m = { l: 56, r: 10, t: 10, b: 20 };
    const secs = done.map(r => (Date.parse(r.finished_at) - Date.parse(r.started_at)) / 1000);
    const ymax = niceMax(Math.max(1, ...secs));
    const bw = (w - m.l - m.r) / done.length;
    const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "run durations" });
    frame(root, w, h, m, ymax, v => fmt(v) + "s");
    const color = { success: "#2f9e6e", partial: "#e0a03a", failed: "#d14b4b", abandoned: "#8a4fbf" };
    done.forEach((r, i) => {
      const v = secs[i], y = m.t + (h - m.t - m.b) * (1 - v / ymax);
      const b = svg("rect", { x: m.l + i * bw + 1, y, width: Math.max(1, bw - 2), height: Math.max(1, h - m.b - y),
        fill: color[r.outcome] || "#9aa1ad", class: "bar" }, root);
      const tip = svg("title", {}, b); tip.textContent = `#${r.id} ${r.job} ${r.target || ""}: ${r.outcome}, ${v}s`;
    });
    box.replaceChildren(root);
    legend(box, []);
  }
  table(document.getElementById("runs"),
    [{ label: "id", num: true }, { label: "job" }, { label: "target" }, { label: "started (UTC)" }, { label: "outcome" }, { label: "error" }],
    runs.slice(0, 15).map(r => [r.id, r.job, r.target || "", r.started_at.replace("T", " ").slice(0, 19),
      { text: r.outcome, cls: "outcome-" + r.outcome }, (r.error || "").slice(0, 80)]));
}

function drawAudiences(runs) {
  const latest = new Map();
  for (const r of runs) if (r.job === "sync" && r.target && !latest.has(r.target)) latest.set(r.target, r);
  table(document.getElementById("audiences"),
    [{ label: "segment → destination" }, { label: "audience" }, { label: "eligible", num: true }, { label: "added", num: true },
     { label: "removed", num: true }, { label: "last sync" }],
    [...latest.values()].map(r => [r.target, r.counts.audience || "", r.counts.eligible, r.counts.added, r.counts.removed,
      { text: r.outcome, cls: "outcome-" + r.outcome }]));
}

function drawMatches(data) {
  const known = v => v === null || v === undefined ? "–" : fmt(v);
  const band = p => !p ? "not reported" : (p.lower === p.upper ? known(p.lower) : `${known(p.lower)}–${known(p.upper)}`);
  const ids = m => m.identifiers ? ["email", "phone", "address"].map(k => `${k} ${known(m.identifiers[k])}`).join(", ") : "unknown";
  const rows = [];
  for (const s of data.segments) for (const m of s.audiences || [])
    rows.push([`${m.segment} → ${m.destination}`, m.audience, m.members_sent, ids(m), band(m.platform_size),
      m.matched_percent === null || m.matched_percent === undefined ? "–" : m.matched_percent.toFixed(1) + "%",
      m.platform_size ? m.platform_size.day : ""]);
  table(document.getElementById("matches"),
    [{ label: "segment → destination" }, { label: "audience" }, { label: "members sent", num: true },
     { label: "identifiers (latest sync)" }, { label: "platform matched", num: true }, { label: "match", num: true },
     { label: "pulled" }], rows);
}

function drawCreatives(data) {
  table(document.getElementById("creatives"),
    [{ label: "set" }, { label: "segment" }, { label: "destination" }, { label: "live variant" }, { label: "since (UTC)" }],
    data.sets.map(s => [s.name, s.segment, s.destination, s.live ? `${s.live.variant_id} (${s.live.creative_id})` : "not rotated yet",
      s.live ? s.live.live_from.replace("T", " ").slice(0, 16) : ""]));
}

async function load() {
  const status = document.getElementById("status");
  try {
    const [segments, runs, st] = await Promise.all([api("/api/segments?since=30d"), api("/api/runs?limit=200"), api("/api/status")]);
    drawSizes(segments);
    drawMatches(segments);
    drawRuns(runs.runs);
    drawAudiences(runs.runs);
    status.textContent = `replica ${st.holder} · ${st.jobs.map(j => j.name + " next " + (j.next || "–").slice(11, 19)).join(" · ")}`;
    try { drawReport(await api("/api/report?since=30d&by=segment,channel")); document.getElementById("perf-window").textContent = "(30 days)"; }
    catch (e) { for (const id of ["chart-ctr", "chart-cvr"]) empty(document.getElementById(id), "No performance data yet (metrics pull)."); }
    try { drawCreatives(await api("/api/creatives")); }
    catch (e) { empty(document.getElementById("creatives"), "No creative rotation data."); }
    document.body.dataset.loaded = "true";
  } catch (e) {
    if (e.status === 401) {
      document.getElementById("token-form").hidden = false;
      status.textContent = "token required";
    } else {
      status.textContent = "error: " + e.message;
    }
  }
}

document.getElementById("token-form").addEventListener("submit", ev => {
  ev.preventDefault();
  sessionStorage.setItem("campaignd-token", document.getElementById("token").value);
  document.getElementById("token-form").hidden = true;
  load();
});

load();
setInterval(load, 60000);
