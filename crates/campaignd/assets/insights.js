// campaignd report page, issue 11 part: first-party KPIs per segment, lift with 95 % intervals
// (treatment vs holdout), and creative sets that rotated early for fatigue. Uses app.js's helpers.
"use strict";

function drawKpis(rows) {
  const box = document.getElementById("chart-kpis");
  const periods = [...new Set(rows.map(r => r.period))].sort().slice(-6);
  const segs = [...new Set(rows.map(r => r.segment))].sort();
  const groups = segs.map(s => ({ name: s, rows: Object.fromEntries(rows.filter(r => r.segment === s).map(r => [r.period, r])) }));
  if (rows.length === 0) empty(box, "No segment members yet (segments recompute).");
  else groupedBars(box, groups, periods, r => r ? r.revenue_per_member : null, fmt, "revenue per member per segment and week");
  table(document.getElementById("kpis"),
    [{ label: "segment" }, { label: "week" }, { label: "members", num: true }, { label: "buyers", num: true },
     { label: "orders", num: true }, { label: "revenue", num: true }, { label: "AOV", num: true },
     { label: "conversion", num: true }, { label: "retention", num: true }, { label: "rev/member", num: true }],
    rows.filter(r => r.period === periods[periods.length - 1]).map(r => [r.segment, r.period, r.members, r.buyers, r.orders,
      fmt(r.revenue), fmt(r.aov), pct(r.conversion_rate), pct(r.retention), fmt(r.revenue_per_member)]));
}

function intervalChart(box, rows) {
  // One line per sync: the conversion lift's 95 % interval, a dot at the estimate, and the zero line.
  const usable = rows.filter(r => r.lift.conversion.absolute_interval);
  if (usable.length === 0) return empty(box, "No sync has a holdout with data yet (holdout = 0.1 on a [[sync]]).");
  const w = 540, rowH = 28, m = { l: 170, r: 20, t: 10, b: 24 }, h = m.t + m.b + rowH * usable.length;
  const lows = usable.map(r => r.lift.conversion.absolute_interval.low), highs = usable.map(r => r.lift.conversion.absolute_interval.high);
  const span = Math.max(Math.abs(Math.min(0, ...lows)), Math.abs(Math.max(0, ...highs)), 0.01);
  const x = v => m.l + (w - m.l - m.r) * (v + span) / (2 * span);
  const root = svg("svg", { viewBox: `0 0 ${w} ${h}`, role: "img", "aria-label": "conversion lift with 95% intervals" });
  svg("line", { x1: x(0), x2: x(0), y1: m.t, y2: h - m.b, stroke: "#9aa1ad", "stroke-dasharray": "3 3" }, root);
  for (const v of [-span, 0, span]) {
    const t = svg("text", { x: x(v), y: h - 6, "font-size": 10, fill: "#6b7385", "text-anchor": "middle" }, root);
    t.textContent = pct(v);
  }
  usable.forEach((r, i) => {
    const y = m.t + rowH * i + rowH / 2, iv = r.lift.conversion.absolute_interval;
    const color = r.lift.indistinguishable ? "#9aa1ad" : "#2f9e6e";
    const label = svg("text", { x: m.l - 8, y: y + 4, "font-size": 11, fill: "#2b3040", "text-anchor": "end" }, root);
    label.textContent = `${r.segment} → ${r.destination}`;
    svg("line", { x1: x(iv.low), x2: x(iv.high), y1: y, y2: y, stroke: color, "stroke-width": 3 }, root);
    const dot = svg("circle", { cx: x(r.lift.conversion.absolute), cy: y, r: 4, fill: color }, root);
    const tip = svg("title", {}, dot);
    tip.textContent = `${r.segment}: ${pct(r.lift.conversion.absolute)} [${pct(iv.low)}, ${pct(iv.high)}]`;
  });
  box.replaceChildren(root);
}

function drawLift(rows) {
  intervalChart(document.getElementById("chart-lift"), rows);
  const iv = (i, f) => i ? `[${f(i.low)}, ${f(i.high)}]` : "–";
  table(document.getElementById("lift"),
    [{ label: "segment → destination" }, { label: "treated / held out", num: true }, { label: "conversion", num: true },
     { label: "lift (95 %)", num: true }, { label: "rev/member lift (95 %)", num: true }, { label: "flag" }],
    rows.map(r => {
      const l = r.lift;
      const flag = l.indistinguishable ? { text: "not distinguishable from 0: retire?", cls: "outcome-partial" }
        : { text: "lift", cls: "outcome-success" };
      return [`${r.segment} → ${r.destination}`, `${l.treatment.members} / ${l.holdout.members}`,
        `${pct(l.treatment.conversion_rate)} vs ${pct(l.holdout.conversion_rate)}`,
        `${pct(l.conversion.absolute)} ${iv(l.conversion.absolute_interval, pct)}`,
        `${fmt(l.revenue_per_member.absolute)} ${iv(l.revenue_per_member.absolute_interval, fmt)}`,
        l.warnings.length ? { text: l.warnings.join("; "), cls: "outcome-failed" } : flag];
    }));
}

function drawFatigue(data) {
  table(document.getElementById("fatigue"),
    [{ label: "set" }, { label: "went live" }, { label: "at (UTC)" }, { label: "why" }],
    data.early.map(e => [e.set_name, e.variant_id, e.at.replace("T", " ").slice(0, 16), { text: e.reason, cls: "outcome-partial" }]));
}

async function loadInsights() {
  try { drawKpis(await api("/api/kpis?since=6w&by=segment,week")); }
  catch (e) { empty(document.getElementById("chart-kpis"), "KPIs unavailable: " + e.message); }
  try { drawLift(await api("/api/lift")); }
  catch (e) { empty(document.getElementById("chart-lift"), "Lift unavailable: " + e.message); }
  try { drawFatigue(await api("/api/fatigue")); }
  catch (e) { empty(document.getElementById("fatigue"), "No rotation data."); }
}

loadInsights();
setInterval(loadInsights, 60000);
