// slmgate dashboard: reads /dashboard/api/summary (the cost ledger from the audit log) and
// /dashboard/api/shadow (shadow-mode agreement), and draws them with Chart.js (embedded; no
// network access needed).
"use strict";

const $ = (sel) => document.querySelector(sel);
const charts = {};
const COLORS = ["#3b6fd8", "#1f9d62", "#e0962b", "#c8463d", "#7a56c8", "#2aa3b5", "#8a8f9c"];

function usd(v) {
  if (v === null || v === undefined) return "–";
  const a = Math.abs(v);
  const s = a >= 100 ? a.toFixed(2) : a >= 1 ? a.toFixed(4) : a.toFixed(6);
  return (v < 0 ? "−$" : "$") + s;
}
const pct = (v) => (v === null || v === undefined ? "–" : v.toFixed(1) + " %");
const ms = (v) => v + " ms";

function setText(testid, text) {
  const el = document.querySelector(`[data-testid="${testid}"]`);
  if (el) el.textContent = text;
}

function chart(id, config) {
  if (charts[id]) charts[id].destroy();
  config.options = Object.assign({ responsive: true, maintainAspectRatio: false, animation: false }, config.options || {});
  charts[id] = new Chart($("#" + id), config);
}

function label(ts, bucketMs) {
  const d = new Date(ts);
  if (bucketMs >= 86400000) return d.toISOString().slice(5, 10);
  return d.toISOString().slice(5, 16).replace("T", " ");
}

function table(testid, groups) {
  const el = document.querySelector(`[data-testid="${testid}"]`);
  const head = "<tr><th>name</th><th>requests</th><th>cost</th><th>baseline</th><th>saved</th><th>escalated</th><th>quality</th></tr>";
  const rows = groups.map((g) =>
    `<tr data-name="${g.name.replace(/"/g, "&quot;")}"><td>${escapeHtml(g.name)}</td><td>${g.requests}</td>` +
    `<td>${usd(g.cost_usd)}</td><td>${usd(g.baseline_usd)}</td>` +
    `<td class="${(g.savings_pct ?? 0) < 0 ? "neg" : ""}">${pct(g.savings_pct)}</td>` +
    `<td>${pct(g.escalation_rate * 100)}</td><td>${g.quality === null ? "–" : pct(g.quality * 100)}</td></tr>`);
  el.innerHTML = head + (rows.join("") || "<tr><td colspan=7>no traffic yet</td></tr>");
}

function escapeHtml(s) {
  return s.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}

function render(s) {
  const t = s.totals;
  setText("kpi-cost", usd(t.cost_usd));
  setText("kpi-baseline", usd(t.baseline_usd));
  setText("kpi-savings", usd(t.savings_usd));
  setText("kpi-savings-pct", t.savings_pct === null ? "no baseline configured" : pct(t.savings_pct) + " of the baseline");
  setText("kpi-requests", String(t.requests));
  setText("kpi-errors", `${t.errors} not answered`);
  setText("kpi-escalation", pct(t.escalation_rate * 100));
  setText("kpi-quality", t.quality === null ? "–" : pct(t.quality * 100));
  setText("kpi-reviewed", `${t.good} of ${t.reviewed} reviewed answers good`);
  setText("kpi-p95", ms(t.p95_ms));
  setText("kpi-p50", `p50 ${ms(t.p50_ms)} · p99 ${ms(t.p99_ms)}`);
  setText("baseline", s.baseline ? `baseline: ${s.baseline}` : "no [cost] baseline");

  let cost = 0, base = 0;
  const spend = [], baseline = [];
  for (const b of s.series) {
    cost += b.cost_usd; base += b.baseline_usd;
    spend.push(cost); baseline.push(base);
  }
  chart("spend", {
    type: "line",
    data: {
      labels: s.series.map((b) => label(b.t_ms, s.bucket_ms)),
      datasets: [
        { label: "LLM-only baseline", data: baseline, borderColor: "#c8463d", backgroundColor: "rgba(200,70,61,.08)", fill: true, pointRadius: 0 },
        { label: "actual spend", data: spend, borderColor: "#1f9d62", backgroundColor: "rgba(31,157,98,.15)", fill: true, pointRadius: 0 },
      ],
    },
    options: { scales: { y: { beginAtZero: true } }, plugins: { legend: { position: "bottom" } } },
  });
  chart("tiers", {
    type: "doughnut",
    data: { labels: s.tiers.map((x) => x.name), datasets: [{ data: s.tiers.map((x) => x.count), backgroundColor: COLORS }] },
    options: { plugins: { legend: { position: "right" } } },
  });
  chart("causes", {
    type: "bar",
    data: { labels: s.escalation_causes.map((x) => x.name), datasets: [{ label: "escalations", data: s.escalation_causes.map((x) => x.count), backgroundColor: "#e0962b" }] },
    options: { plugins: { legend: { display: false } }, scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } },
  });
  const models = s.models.filter((m) => m.answered > 0);
  chart("latency", {
    type: "bar",
    data: {
      labels: models.map((m) => m.name),
      datasets: [
        { label: "p50", data: models.map((m) => m.p50_ms), backgroundColor: "#3b6fd8" },
        { label: "p95", data: models.map((m) => m.p95_ms), backgroundColor: "#7a56c8" },
        { label: "p99", data: models.map((m) => m.p99_ms), backgroundColor: "#c8463d" },
      ],
    },
    options: { plugins: { legend: { position: "bottom" } }, scales: { y: { beginAtZero: true } } },
  });
  chart("volume", {
    type: "bar",
    data: {
      labels: s.series.map((b) => label(b.t_ms, s.bucket_ms)),
      datasets: [
        { label: "not escalated", data: s.series.map((b) => b.requests - b.escalated), backgroundColor: "#1f9d62", stack: "r" },
        { label: "escalated", data: s.series.map((b) => b.escalated), backgroundColor: "#e0962b", stack: "r" },
      ],
    },
    options: { plugins: { legend: { position: "bottom" } }, scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true, ticks: { precision: 0 } } } },
  });
  table("routes", s.routes);
  table("keys", s.keys);
}

function shadowTable(report) {
  const el = document.querySelector('[data-testid="shadow"]');
  const t = report.thresholds;
  const head = "<tr><th>route</th><th>shadow</th><th>compared</th><th>failed</th><th>agreement</th><th>exact</th>" +
    "<th>p50 route / shadow</th><th>cost route / shadow</th>" +
    t.map((x) => `<th>agree ≥ ${x}</th>`).join("") + "<th>saved if shadow took over</th></tr>";
  const rows = report.totals.map((g) =>
    `<tr data-name="${escapeHtml(g.route + "/" + g.shadow_model)}"><td>${escapeHtml(g.route)}</td><td>${escapeHtml(g.shadow_model)}</td>` +
    `<td>${g.compared}</td><td>${g.errors}</td><td>${g.agreement_mean.toFixed(3)}</td><td>${pct(g.exact_share * 100)}</td>` +
    `<td>${ms(g.primary_p50_ms)} / ${ms(g.shadow_p50_ms)}</td><td>${usd(g.primary_cost_usd)} / ${usd(g.shadow_cost_usd)}</td>` +
    g.projections.map((p) => `<td>${pct(p.agree_share * 100)}</td>`).join("") +
    `<td>${usd(g.projections.length ? g.projections[0].takeover_savings_usd : 0)}</td></tr>`);
  el.innerHTML = head + (rows.join("") || `<tr><td colspan=${9 + t.length}>no shadowed requests (set shadow = { models = [...] } on a route)</td></tr>`);
}

async function loadShadow(range) {
  try {
    const r = await fetch(`/dashboard/api/shadow?since=${encodeURIComponent(range)}`, { credentials: "same-origin" });
    if (r.ok) shadowTable(await r.json());
  } catch (e) {
    // The ledger's error line reports a store that cannot be read.
  }
}

async function load() {
  const range = $("#range").value;
  try {
    const r = await fetch(`/dashboard/api/summary?since=${encodeURIComponent(range)}`, { credentials: "same-origin" });
    if (r.status === 401) { location.href = "/dashboard"; return; }
    if (!r.ok) throw new Error((await r.json()).error?.message || r.statusText);
    render(await r.json());
    await loadShadow(range);
    $("#error").hidden = true;
    document.body.dataset.loaded = String(Date.now());
  } catch (e) {
    $("#error").textContent = "cannot load the ledger: " + e.message;
    $("#error").hidden = false;
  }
}

$("#range").addEventListener("change", load);
$("#refresh").addEventListener("click", load);
load();
setInterval(load, 30000);
