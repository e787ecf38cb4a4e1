// mprl workbench: runs (live curves, checkpoint videos, lineage), assets, launching a phase from a
// checkpoint, stop/resume, and comparing phase runs. Plain browser JavaScript, no build step; the
// one third-party library is uPlot (vendored, /static/uPlot.iife.min.js: no network beyond this server).
"use strict";

const API = "/api/v1";
const SVG_NS = "http://www.w3.org/2000/svg";
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f", "#a16207", "#475569"];
const METRIC_LABEL = { normalized_score: "normalized score", evaluation_return: "evaluation return" };
const state = {
  runId: null, run: null, videoSteps: 1000, nodeColor: {}, pollTimer: null, videoRequest: 0, token: null,
  assets: null, live: null, liveOffset: 0, plots: [], checkpoint: null, compareKeys: new Set(),
};

function $(sel) { return document.querySelector(sel); }

function el(tag, attrs = {}, text) {
  const svg = ["svg", "g", "line", "path", "circle", "rect", "text", "polyline", "title"].includes(tag);
  const node = svg ? document.createElementNS(SVG_NS, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- token (a header, never a cookie)
function readToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  const query = new URLSearchParams(location.search);
  const given = hash.get("token") || query.get("token");
  if (given) {
    sessionStorage.setItem("mprl-token", given);
    hash.delete("token");
    const rest = hash.toString();
    history.replaceState(null, "", location.pathname + (rest ? "#" + rest : ""));
  }
  state.token = sessionStorage.getItem("mprl-token");
  showTokenState();
}

function showTokenState() {
  $("#token-state").textContent = state.token ? "control token set ✓" : "no control token: launching, stopping and building need it";
  $("#token-input").hidden = !!state.token;
  $("#token-save").hidden = !!state.token;
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (options.control) {
    if (!state.token) throw new Error("this needs the server's control token: paste the token `mprl serve` printed (top right)");
    headers["X-Mprl-Token"] = state.token;
  }
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const resp = await fetch(API + path, { method: options.method || "GET", headers, body: options.body });
  let body = null;
  try { body = await resp.json(); } catch (e) { /* not JSON */ }
  if (!resp.ok) {
    const err = new Error(body && body.error ? body.error.message : `${resp.status} ${resp.statusText}`);
    err.status = resp.status;
    err.body = body;
    throw err;
  }
  return body;
}

function fmt(x, digits = 1) {
  if (x === null || x === undefined) return "–";
  if (Math.abs(x) >= 1e4) return (x / 1e3).toFixed(0) + "k";
  return Number(x).toFixed(digits);
}

function enc(s) { return encodeURIComponent(s); }

// ---------------------------------------------------------------- tabs
function showTab(name) {
  for (const b of document.querySelectorAll("#tabs button")) b.classList.toggle("active", b.dataset.tab === name);
  for (const v of document.querySelectorAll(".view")) v.hidden = v.id !== "view-" + name;
  if (name === "assets") loadAssets().catch((e) => showError("#checkpoints-note", e));
  if (name === "compare") loadComparePicker().catch((e) => showError("#compare-status", e));
}

function showError(sel, e) { const n = $(sel); n.className = "error"; n.textContent = e.message; }

// ---------------------------------------------------------------- runs
async function loadRuns(select) {
  const info = await api("");
  state.videoSteps = info.video_steps;
  $("#server-info").textContent = `API ${info.api} · mprl ${info.version}`;
  const { runs } = await api("/runs");
  state.runs = runs;
  const list = $("#runs");
  list.textContent = "";
  if (!runs.length) {
    list.appendChild(el("li", { class: "muted" }, "No runs under this server's storage path yet."));
    return;
  }
  for (const run of runs.slice().reverse()) {
    const li = el("li", { "data-run-id": run.run_id });
    li.appendChild(el("div", { class: "id" }, run.run_id));
    li.appendChild(el("div", { class: "muted small" },
      `${run.name} · ${run.status} · ${run.phases.length} phase run(s) · ${run.checkpoints} checkpoint(s)`));
    li.addEventListener("click", () => selectRun(run.run_id));
    list.appendChild(li);
  }
  if (select === false) { markActiveRun(); return; }
  const wanted = select || new URLSearchParams(location.hash.slice(1)).get("run");
  const first = runs.find((r) => r.run_id === wanted) || runs[runs.length - 1];
  await selectRun(first.run_id);
}

function markActiveRun() {
  for (const li of document.querySelectorAll("#runs li")) li.classList.toggle("active", li.dataset.runId === state.runId);
}

async function selectRun(runId, keep) {
  const changed = state.runId !== runId;
  state.runId = runId;
  history.replaceState(null, "", "#run=" + enc(runId));
  markActiveRun();
  if (changed) { state.liveOffset = 0; $("#progress-log").textContent = ""; }
  try {
    const [detail, curves, graph, progress] = await Promise.all([
      api(`/runs/${enc(runId)}`), api(`/runs/${enc(runId)}/curves`), api(`/runs/${enc(runId)}/lineage`),
      api(`/runs/${enc(runId)}/progress?offset=${state.liveOffset}`),
    ]);
    if (state.runId !== runId) return;
    state.run = detail;
    state.nodeColor = {};
    detail.phases.forEach((n, i) => { state.nodeColor[n.node_id] = COLORS[i % COLORS.length]; });
    renderHeader(detail);
    renderPhases(detail);
    renderCurves(curves);
    renderLineage(graph);
    renderProgress(progress);
  } catch (e) {
    $("#run-header").textContent = "";
    $("#run-header").appendChild(el("p", { class: "error" }, "Cannot load run: " + e.message));
  }
}

function renderHeader(detail) {
  const r = detail.run;
  const box = $("#run-header");
  box.textContent = "";
  box.appendChild(el("h2", {}, `${r.name} — ${r.run_id}`));
  box.appendChild(el("p", { class: "muted" },
    `created ${new Date(r.created_at * 1000).toLocaleString()} · code ${r.code_version || "?"}${r.error ? " · " + r.error : ""}`));
}

function renderPhases(detail) {
  const tbody = $("#phases tbody");
  tbody.textContent = "";
  for (const n of detail.phases) {
    const tr = el("tr", { "data-node-id": n.node_id, "data-status": n.status });
    const name = el("td");
    name.appendChild(el("span", { style: `color:${state.nodeColor[n.node_id]}` }, "■ "));
    name.appendChild(document.createTextNode(n.phase + (n.branch ? ` (${n.branch})` : "")));
    tr.appendChild(name);
    for (const v of [n.algorithm, n.paradigm, n.env, n.dataset || "–", n.axis === "num_updates" ? "gradient updates" : "env steps", n.status, n.parent_checkpoint_id || "–"]) {
      tr.appendChild(el("td", {}, v));
    }
    tbody.appendChild(tr);
  }
  $("#phases-section").hidden = false;
}

// ---------------------------------------------------------------- live progress, stop, resume
function renderProgress(p) {
  state.live = p;
  const active = p.active || p.status === "running";
  $("#run-actions").hidden = false;
  const badge = $("#run-status");
  badge.textContent = p.status + (p.active ? " (scheduler live)" : "");
  badge.dataset.status = p.status;
  $("#run-stop").hidden = !p.active;
  $("#run-resume").hidden = p.active || !["stopped", "failed", "created"].includes(p.status);
  const parentOf = parentPhaseRun();
  $("#run-compare-parent").hidden = !parentOf;
  if (p.lines && p.lines.length) {
    $("#progress-section").hidden = false;
    const log = $("#progress-log");
    log.textContent += p.lines.join("\n") + "\n";
    log.scrollTop = log.scrollHeight;
  }
  state.liveOffset = p.offset;
  const running = p.phases.filter((n) => n.status === "running").map((n) => n.node_id);
  $("#progress-summary").textContent = `${p.status}${running.length ? " · running " + running.join(", ") : ""} · ${p.checkpoints} checkpoint(s) · ${p.videos} video(s)`;
  if (p.lines && p.lines.length) $("#progress-section").hidden = false;
  scheduleLive(active);
}

function scheduleLive(active) {
  clearTimeout(state.liveTimer);
  if (!active) return;
  const runId = state.runId;
  state.liveTimer = setTimeout(async () => {
    if (state.runId !== runId) return;
    try {
      const before = state.live;
      const p = await api(`/runs/${enc(runId)}/progress?offset=${state.liveOffset}`);
      if (state.runId !== runId) return;
      const grew = !before || p.checkpoints !== before.checkpoints || p.videos !== before.videos || p.status !== before.status ||
        JSON.stringify(p.phases) !== JSON.stringify(before.phases) || (p.lines && p.lines.length);
      if (grew) {  // new metrics, checkpoints or videos: redraw the curves and the graph (live)
        const [detail, curves, graph] = await Promise.all([api(`/runs/${enc(runId)}`), api(`/runs/${enc(runId)}/curves`), api(`/runs/${enc(runId)}/lineage`)]);
        if (state.runId !== runId) return;
        state.run = detail;
        detail.phases.forEach((n, i) => { state.nodeColor[n.node_id] = COLORS[i % COLORS.length]; });
        renderHeader(detail);
        renderPhases(detail);
        renderCurves(curves);
        renderLineage(graph);
      }
      renderProgress(p);
      if (!p.active && before && before.active) loadRuns(false);
    } catch (e) {
      scheduleLive(true);
    }
  }, 1500);
}

function parentPhaseRun() {
  // The newest phase run seeded from a known checkpoint (of this run, or of another run in the
  // asset list: a new run launched from a checkpoint): (its key, its parent phase run's key).
  if (!state.run) return null;
  const known = Object.fromEntries(((state.assets && state.assets.checkpoints) || []).concat(state.run.policies).map((c) => [c.policy_id, c]));
  const seeded = state.run.phases.filter((n) => n.parent_checkpoint_id && known[n.parent_checkpoint_id]);
  if (!seeded.length) return null;
  const n = seeded[seeded.length - 1], p = known[n.parent_checkpoint_id];
  return [`${state.runId}/${n.node_id}`, `${p.run_id}/${p.node_id}`];
}

async function runAction(kind) {
  const msg = $("#run-action-msg");
  msg.className = "muted";
  msg.textContent = kind === "stop" ? "stopping…" : "resuming…";
  try {
    await api(`/runs/${enc(state.runId)}/${kind}`, { method: "POST", control: true });
    msg.textContent = kind === "stop" ? "stopped; resume it when you want" : "resumed";
    await selectRun(state.runId);
    if (kind === "resume") scheduleLive(true);
  } catch (e) {
    msg.className = "error";
    msg.textContent = e.message;
  }
}

// ---------------------------------------------------------------- charts (uPlot)
function tickDecimals(splits) {
  // Enough decimals that neighbouring ticks never print alike (data varying by < 0.1 included).
  if (splits.length < 2) return 1;
  const step = Math.abs(splits[1] - splits[0]) || 1;
  return Math.min(8, Math.max(0, Math.ceil(-Math.log10(step) + 1e-9)));
}

function axisValues(store) {
  return (u, splits) => {
    const d = tickDecimals(splits);
    const out = splits.map((v) => (Math.abs(v) >= 1e5 && d === 0 ? (v / 1e3).toFixed(0) + "k" : v.toFixed(d)));
    if (store) store.ticks = out;
    return out;
  };
}

function yRange(u, min, max) {
  if (min === null || max === null || !isFinite(min) || !isFinite(max)) return [0, 1];
  // At least 5% of the values' magnitude (1 around 0), as in `mprl curves`: a 1e-4 wiggle stays flat.
  const need = 0.05 * Math.max(Math.abs(min), Math.abs(max)) || 1;
  if (max - min < need) { const mid = (min + max) / 2; min = mid - need / 2; max = mid + need / 2; }
  const span = max - min;
  return [min - span * 0.08, max + span * 0.08];
}

// A uPlot chart of several (x, y) series with their own x values; markers drawn as HTML over it.
function makePlot(box, { title, xLabel, yLabel, series, markers = [], boundaries = [], height = 300 }) {
  const wrap = el("div", { class: "chart" });
  box.appendChild(wrap);
  const tables = series.map((s) => {
    const pts = s.points.slice().sort((a, b) => a[0] - b[0]);
    const xs = [], ys = [];
    for (const [x, y] of pts) { if (xs.length && xs[xs.length - 1] === x) { ys[ys.length - 1] = y; continue; } xs.push(x); ys.push(y); }
    return [xs, ys];
  });
  const data = tables.length ? uPlot.join(tables) : [[0], []];
  // Markers extend the ranges too (a checkpoint past the last evaluation stays visible).
  const mx = markers.map((m) => m.x), my = markers.map((m) => m.y);
  const xsAll = data[0].concat(mx, boundaries.map((b) => b.x));
  const ysAll = [].concat(...data.slice(1).map((a) => a.filter((v) => v !== null && v !== undefined)), my);
  const xMin = Math.min(...xsAll), xMax = Math.max(...xsAll);
  const dataX0 = data[0][0], dataX1 = data[0][data[0].length - 1];
  const yMin = ysAll.length ? Math.min(...ysAll) : 0, yMax = ysAll.length ? Math.max(...ysAll) : 1;
  const yTicks = {};
  const width = Math.max(420, Math.min(box.clientWidth || 900, 1100) - 10);
  const opts = {
    title, width, height,
    scales: {
      // The auto range (the data's extent) widens to the boundaries and markers, so a phase that
      // starts before its first evaluation still shows its start; a drag-zoom range is kept.
      x: { time: false, range: (u, a, b) => {
        if (a === null || b === null) return [xMin, xMax > xMin ? xMax : xMin + 1];
        if (a === dataX0 && b === dataX1) { a = Math.min(a, xMin); b = Math.max(b, xMax); }
        return a === b ? [a - 1, b + 1] : [a, b];
      } },
      y: { range: (u, a, b) => yRange(u, Math.min(a ?? yMin, yMin), Math.max(b ?? yMax, yMax)) },
    },
    axes: [
      { label: xLabel, values: axisValues(null) },
      { label: yLabel, values: axisValues(yTicks), size: 64 },
    ],
    series: [{ label: xLabel, value: (u, v) => (v === null ? "–" : fmt(v, 0)) }].concat(series.map((s) => ({
      label: s.label, stroke: s.color, width: 1.8, spanGaps: true, points: { show: s.points.length < 40, size: 4 },
      value: (u, v) => (v === null || v === undefined ? "–" : Number(v).toFixed(3)),
    }))),
    cursor: { drag: { x: true, y: false }, points: { size: 6 } },
    legend: { live: true },
    hooks: {
      draw: [(u) => drawOverlays(u, wrap, markers, boundaries)],
    },
  };
  const plot = new uPlot(opts, data, wrap);
  plot.yTicks = yTicks;
  wrap.dataset.points = String(series.reduce((a, s) => a + s.points.length, 0));
  // Legend rows carry the series' ids (tests, and toggling runs by name).
  const rows = wrap.querySelectorAll(".u-legend .u-series");
  series.forEach((s, i) => { const r = rows[i + 1]; if (r && s.id) r.setAttribute("data-series", s.id); });
  state.plots.push(plot);
  wrap.__plot = plot;
  return plot;
}

function drawOverlays(u, wrap, markers, boundaries) {
  let layer = wrap.querySelector(".overlay");
  if (!layer) { layer = el("div", { class: "overlay" }); u.over.appendChild(layer); }
  layer.textContent = "";
  const W = u.over.clientWidth, H = u.over.clientHeight;
  const [x0, x1] = [u.scales.x.min, u.scales.x.max];
  // Phase boundaries: a dashed line and a label; labels that would overlap move down a row.
  const rows = [];
  for (const b of boundaries) {
    if (b.x < x0 || b.x > x1) continue;
    const left = u.valToPos(b.x, "x");
    const line = el("div", { class: "boundary", "data-node-id": b.nodeId, style: `left:${left}px;border-color:${b.color}` });
    layer.appendChild(line);
    const w = b.label.length * 6.5 + 8;
    let row = 0;
    while (rows.some(([r, a, z]) => r === row && left < z && left + w > a)) row++;
    rows.push([row, left, left + w]);
    layer.appendChild(el("div", { class: "boundary-label", style: `left:${left + 3}px;top:${2 + row * 14}px;color:${b.color}` }, b.label));
  }
  // Checkpoints: clickable dots; a label only where it does not overlap one already placed.
  const placed = [];
  for (const m of markers) {
    if (m.x < x0 || m.x > x1 || m.y === null) continue;
    const left = u.valToPos(m.x, "x"), top = u.valToPos(m.y, "y");
    if (top < -4 || top > H + 4 || left > W + 4) continue;
    const dot = el("button", {
      type: "button", class: ["ck", m.selected ? "selected" : "", m.videos ? "has-video" : ""].join(" ").trim(),
      "data-checkpoint-id": m.id, title: m.title, style: `left:${left}px;top:${top}px;background:${m.color}`,
    });
    dot.addEventListener("click", (ev) => { ev.stopPropagation(); m.onClick(); });
    dot.addEventListener("mousedown", (ev) => ev.stopPropagation());
    layer.appendChild(dot);
    if (m.label) {
      const w = m.label.length * 6 + 6, lx = left + 7, ly = top - 16;
      if (!placed.some(([a, b, c, d]) => lx < c && lx + w > a && ly < d && ly + 13 > b) && lx + w < W + 40) {
        placed.push([lx, ly, lx + w, ly + 13]);
        layer.appendChild(el("div", { class: "ck-label", style: `left:${lx}px;top:${ly}px` }, m.label));
      }
    }
  }
}

function renderCurves(data) {
  const box = $("#curves");
  for (const p of state.plots.splice(0)) { if (p.root && box.contains(p.root)) p.destroy(); else state.plots.push(p); }
  box.textContent = "";
  for (const panel of data.panels) {
    const metric = panel.metric || "evaluation_return";
    const yi = metric === "normalized_score" ? 2 : 1;
    const div = el("div", { class: "panel", "data-axis": panel.axis, "data-metric": metric });
    div.appendChild(el("h3", {}, `${METRIC_LABEL[metric]} vs ${panel.label}`));
    box.appendChild(div);
    const series = [], markers = [], boundaries = [];
    for (const n of panel.nodes) {
      const color = state.nodeColor[n.node_id] || "#333";
      boundaries.push({ x: n.offset, nodeId: n.node_id, color, label: `${n.phase} · ${n.algorithm}` });
      for (const t of n.trials) {
        const pts = t.points.filter((p) => p[yi] !== null).map((p) => [p[0], p[yi]]);
        series.push({ id: t.trial_id, label: `${n.phase} ${t.sweep_label ? t.sweep_label + " " : ""}seed ${t.seed}`, color, points: pts });
      }
      for (const c of n.checkpoints) {
        const y = c[metric] !== null && c[metric] !== undefined ? c[metric] : null;
        markers.push({
          id: c.checkpoint_id, x: c.x, y, color, selected: c.selected, videos: c.videos.length > 0,
          label: c.selected ? `${c.checkpoint_id.slice(0, 9)}★` : null,
          title: `${c.checkpoint_id} · ${n.phase} · x=${fmt(c.x, 0)} · return ${fmt(c.evaluation_return)}` +
            (c.normalized_score !== null ? ` · score ${fmt(c.normalized_score)}` : "") + (c.videos.length ? " · video ready" : " · click: video, continue with…"),
          onClick: () => selectCheckpoint(c.checkpoint_id, `${n.phase} · ${c.checkpoint_id}`),
        });
      }
    }
    makePlot(div, { xLabel: panel.label, yLabel: METRIC_LABEL[metric], series, markers, boundaries });
  }
  if (!data.panels.length) box.appendChild(el("p", { class: "muted" }, "No metrics recorded yet."));
  $("#curves-section").hidden = false;
}

// ---------------------------------------------------------------- checkpoints: video, continue with…
function checkpointRecord(id) {
  if (state.run) { const c = state.run.policies.find((p) => p.policy_id === id); if (c) return c; }
  if (state.assets && state.assets.checkpoints) {
    const c = state.assets.checkpoints.find((p) => p.policy_id === id);
    if (c) return c;
    const i = (state.assets.imported || []).find((p) => p.policy_id === id);
    if (i) return { ...i, imported: true };
  }
  return null;
}

function selectCheckpoint(id, title) {
  state.checkpoint = id;
  const c = checkpointRecord(id);
  $("#checkpoint-panel").hidden = false;
  $("#checkpoint-title").textContent = id;
  $("#checkpoint-info").textContent = c ? `${c.run_id} · ${c.phase} (${c.algorithm}, ${c.paradigm}) on ${c.env} · ${fmt(c.num_env_steps, 0)} env steps · ${fmt(c.num_updates, 0)} updates · return ${fmt(c.evaluation_return)}` : "";
  playCheckpoint(id, title);
}

async function playCheckpoint(checkpointId, title) {
  const request = ++state.videoRequest;
  if (state.pollTimer) clearTimeout(state.pollTimer);
  const video = $("#video"), status = $("#video-status"), bar = $("#video-progress");
  $("#video-section").hidden = false;
  $("#video-title").textContent = title;
  video.pause();
  video.hidden = true;
  video.dataset.checkpointId = checkpointId;
  status.className = "muted";
  status.textContent = "Looking for a video…";
  bar.hidden = true;
  try {
    let job = await api(`/policies/${enc(checkpointId)}/videos`, { method: "POST", json: { steps: state.videoSteps } });
    while (job.state !== "done") {
      if (request !== state.videoRequest) return;
      if (job.state === "failed") throw new Error(job.error || "the recording failed");
      bar.hidden = false;
      bar.max = job.total || 1;
      bar.value = job.frames || 0;
      status.textContent = `Recording a ${job.total}-step video: ${job.frames}/${job.total} frames…`;
      await new Promise((resolve) => { state.pollTimer = setTimeout(resolve, 400); });
      job = await api(`/videos/jobs/${enc(job.job_id)}`);
    }
    if (request !== state.videoRequest) return;
    bar.hidden = true;
    status.textContent = job.existing ? "Recorded earlier." : `Recorded in ${fmt(job.seconds)} s.`;
    video.src = job.video_url;
    video.dataset.videoId = job.video_id;
    video.hidden = false;
    await video.play().catch(() => { status.textContent += " Press play."; });
    for (const dot of document.querySelectorAll(`[data-checkpoint-id="${checkpointId}"]`)) dot.classList.add("has-video");
  } catch (e) {
    if (request !== state.videoRequest) return;
    bar.hidden = true;
    status.className = "error";
    status.textContent = "No video: " + e.message;
  }
}

// ---------------------------------------------------------------- lineage graph
function renderLineage(graph) {
  const box = $("#lineage");
  box.textContent = "";
  const byId = Object.fromEntries(graph.nodes.map((n) => [n.id, n]));
  const layerOf = {};
  for (const n of graph.nodes) {
    if (n.kind === "dataset") layerOf[n.id] = 0;
    else if (n.kind === "phase") layerOf[n.id] = 1 + 2 * n.ordinal;
  }
  for (const n of graph.nodes) if (n.kind === "checkpoint") layerOf[n.id] = (layerOf[n.node_id] ?? 1) + 1;
  const layers = {};
  for (const n of graph.nodes) (layers[layerOf[n.id]] = layers[layerOf[n.id]] || []).push(n);
  const used = Object.keys(layers).map(Number).sort((a, b) => a - b);
  const colX = {}, BOXW = { dataset: 170, phase: 210, checkpoint: 160 }, BOXH = { dataset: 34, phase: 52, checkpoint: 34 };
  let x = 10;
  for (const l of used) { colX[l] = x; x += Math.max(...layers[l].map((n) => BOXW[n.kind])) + 60; }
  const pos = {};
  let height = 0;
  for (const l of used) {
    let y = 10;
    for (const n of layers[l]) { pos[n.id] = { x: colX[l], y, w: BOXW[n.kind], h: BOXH[n.kind] }; y += BOXH[n.kind] + 12; }
    height = Math.max(height, y);
  }
  const W = x, H = height + 10;
  const svg = el("svg", { width: W, height: H, viewBox: `0 0 ${W} ${H}`, class: "lineage", preserveAspectRatio: "xMinYMin meet" });
  for (const e of graph.edges) {
    const a = pos[e.from], b = pos[e.to];
    if (!a || !b) continue;
    const x1 = a.x + a.w, y1 = a.y + a.h / 2, x2 = b.x, y2 = b.y + b.h / 2, mx = (x1 + x2) / 2;
    const path = el("path", { class: `edge ${e.kind}`, d: `M${x1},${y1} C${mx},${y1} ${mx},${y2} ${x2},${y2}`, "data-from": e.from, "data-to": e.to });
    if (e.label) { path.setAttribute("data-label", e.label); path.appendChild(el("title", {}, `${e.from} → ${e.to}: ${e.label}`)); }  // an ensemble member's edge
    svg.appendChild(path);
  }
  for (const n of graph.nodes) {
    const p = pos[n.id];
    const g = el("g", { class: `gnode ${n.kind} ${n.paradigm || ""} ${n.status || ""}`, transform: `translate(${p.x},${p.y})`, "data-id": n.id });
    const rect = el("rect", { width: p.w, height: p.h });
    if (n.kind === "phase") rect.setAttribute("style", `stroke:${state.nodeColor[n.id] || "#6b7280"};stroke-width:2`);
    g.appendChild(rect);
    if (n.kind === "phase") {
      g.appendChild(el("text", { x: 6, y: 15 }, `${n.phase}${n.branch ? " (" + n.branch.slice(0, 18) + ")" : ""}`));
      g.appendChild(el("text", { x: 6, y: 30 }, `${n.algorithm} · ${n.paradigm}`));
      g.appendChild(el("text", { x: 6, y: 45, class: "muted" }, `${n.env.length > 22 ? n.env.slice(0, 21) + "…" : n.env} · ${n.status}`));
      if (n.transfer) g.appendChild(el("title", {}, n.transfer));
    } else if (n.kind === "dataset") {
      g.appendChild(el("text", { x: 6, y: 21 }, n.label.length > 22 ? n.label.slice(0, 21) + "…" : n.label));
    } else {
      const phase = byId[n.node_id];
      const axisVal = phase && phase.axis === "num_updates" ? `${fmt(n.num_updates, 0)} upd` : `${fmt(n.num_env_steps, 0)} steps`;
      g.appendChild(el("text", { x: 6, y: 14 }, `${n.id}${n.selected ? " ★" : ""}`));
      g.appendChild(el("text", { x: 6, y: 28 }, `${axisVal} · R ${fmt(n.evaluation_return)}`));
      g.appendChild(el("title", {}, "click: play this checkpoint's video, continue with…"));
      g.style.cursor = "pointer";
      g.addEventListener("click", () => selectCheckpoint(n.id, `${phase ? phase.phase : ""} · ${n.id}`));
    }
    svg.appendChild(g);
  }
  box.appendChild(svg);
  // One line per warm-started phase run: its regime diagnosis (mprl.regime), as `mprl lineage show` prints it
  for (const n of ((state.run && state.run.phases) || []).filter((p) => p.regime_json)) {
    const r = JSON.parse(n.regime_json), d = r.diagnosis, pm = (e) => `${fmt(e.mean)} ± ${fmt((e.high - e.low) / 2)}`;
    const iv = r.intervention ? ` · ${r.intervention.why} · settings: ${Object.entries(r.intervention.applied).map(([k, v]) => `${k}=${v}`).join(", ") || "nothing"}` : "";
    box.appendChild(el("p", { class: "small regime", "data-node-id": n.node_id },
      `${n.node_id}: regime ${r.regime} · J(π0) ${pm(d.j_pi0)} vs J(π_D) ${pm(d.j_data)} · ${r.family}${iv}`));
  }
  applyLineageFit();
  $("#lineage-section").hidden = false;
}

function applyLineageFit() {
  // Wide graphs scroll inside their box; "fit to width" scales the whole graph into it instead.
  const svg = $("#lineage svg");
  if (!svg) return;
  const fit = $("#lineage-fit").checked;
  $("#lineage").classList.toggle("fit", fit);
  if (fit) { svg.removeAttribute("height"); svg.setAttribute("width", "100%"); } else {
    const [, , w, h] = svg.getAttribute("viewBox").split(" ");
    svg.setAttribute("width", w); svg.setAttribute("height", h);
  }
}

// ---------------------------------------------------------------- assets
async function loadAssets(force) {
  if (state.assets && !force) return state.assets;
  const [algos, envs, ds, cks] = await Promise.all([api("/assets/algorithms"), api("/assets/environments"), api("/assets/datasets"), api("/assets/checkpoints")]);
  state.assets = { algorithms: algos.algorithms, environments: envs.environments, variants: envs.variants, datasets: ds.datasets,
    checkpoints: cks.checkpoints, imported: cks.imported };
  renderAssets();
  return state.assets;
}

function renderAssets() {
  const a = state.assets;
  const tb = $("#algorithms tbody");
  tb.textContent = "";
  for (const alg of a.algorithms) {
    const tr = el("tr", { "data-algorithm": alg.name, class: "clickable" });
    for (const v of [alg.name, alg.paradigms.join(", ") + ` (default ${alg.paradigm})`, alg.description, alg.paper]) tr.appendChild(el("td", {}, v));
    tr.addEventListener("click", () => showSettings(alg));
    tb.appendChild(tr);
  }
  const envBox = $("#environments");
  envBox.textContent = "";
  envBox.appendChild(el("p", { class: "small" }, a.environments.map((e) => e.env + (e.reference_scores ? "" : " (no D4RL refs)")).join(" · ")));
  const vt = el("table", { id: "variants" });
  vt.appendChild(el("tr")).append(el("th", {}, "variant"), el("th", {}, "base"), el("th", {}, "what changes"), el("th", {}, "stands for"));
  for (const v of a.variants) vt.appendChild(el("tr", { "data-env": v.env })).append(el("td", {}, v.env), el("td", {}, v.base), el("td", {}, v.description), el("td", {}, v.stands_for || ""));
  envBox.appendChild(vt);
  const dsb = $("#datasets tbody");
  dsb.textContent = "";
  for (const d of a.datasets) {
    const tr = el("tr", { "data-dataset": d.id });
    const btn = el("button", { type: "button" }, "metadata");
    btn.addEventListener("click", async () => {
      const box = $("#dataset-details");
      box.hidden = false;
      box.textContent = "loading…";
      try { box.textContent = JSON.stringify(await api(`/assets/datasets?id=${enc(d.id)}`), null, 2); } catch (e) { box.textContent = e.message; }
    });
    const cell = el("td"); cell.appendChild(btn);
    tr.append(el("td", {}, d.id), el("td", {}, d.env_id || "?"), el("td", {}, String(d.total_steps ?? d.steps ?? "?")), el("td", {}, String(d.total_episodes ?? d.episodes ?? "?")), cell);
    dsb.appendChild(tr);
  }
  if (!a.datasets.length) dsb.appendChild(el("tr")).appendChild(el("td", { colspan: 5, class: "muted" }, "No local datasets yet: build one below."));
  const envSel = $("#dataset-build select[name=env]");
  if (!envSel.options.length) for (const e of a.environments) envSel.appendChild(el("option", { value: e.env }, e.env));
  const ckb = $("#checkpoints tbody");
  ckb.textContent = "";
  const rows = a.checkpoints.map((c) => ({ ...c, imported: false })).concat(a.imported.map((c) => ({ ...c, policy_id: c.policy_id || c.checkpoint_id, imported: true })));
  for (const c of rows) {
    const tr = el("tr", { "data-checkpoint-id": c.policy_id });
    const x = c.paradigm === "offline" ? `${fmt(c.num_updates, 0)} upd` : `${fmt(c.num_env_steps, 0)} steps`;
    const go = el("button", { type: "button", class: "continue" }, "continue with…");
    go.addEventListener("click", () => openLaunch(c.policy_id));
    const cell = el("td"); cell.appendChild(go);
    tr.append(el("td", { class: "mono" }, c.policy_id + (c.selected ? " ★" : "")), el("td", {}, c.imported ? "imported" : c.run_id), el("td", {}, c.phase || "–"),
      el("td", {}, c.algorithm || "?"), el("td", {}, c.env || "?"), el("td", {}, x), el("td", {}, fmt(c.evaluation_return)), cell);
    ckb.appendChild(tr);
  }
  $("#checkpoints-note").textContent = `(every run's, and ${a.imported.length} imported with \`mprl import\`)`;
}

function showSettings(alg) {
  const box = $("#algorithm-settings");
  box.textContent = "";
  box.appendChild(el("h3", {}, `${alg.name} settings`));
  const t = el("table", { "data-algorithm": alg.name });
  t.appendChild(el("tr")).append(el("th", {}, "setting"), el("th", {}, "type"), el("th", {}, "default"), el("th", {}, "meaning"));
  for (const s of alg.settings) t.appendChild(el("tr")).append(el("td", { class: "mono" }, s.name), el("td", {}, s.type), el("td", { class: "mono" }, JSON.stringify(s.default)), el("td", {}, s.meaning));
  box.appendChild(t);
}

async function buildDataset(ev) {
  ev.preventDefault();
  const f = ev.target, status = $("#dataset-status"), bar = $("#dataset-progress");
  const body = { env: f.env.value, quality: f.quality.value, size: Number(f.size.value) };
  if (f.id.value.trim()) body.id = f.id.value.trim();
  status.className = "muted";
  status.textContent = "starting…";
  try {
    let job = await api("/datasets/build", { method: "POST", json: body, control: true });
    bar.hidden = false;
    while (job.state === "running" || job.state === "queued") {
      bar.value = job.fraction || 0;
      status.textContent = `${job.dataset_id}: ${job.stage} ${job.done}/${job.total}`;
      await new Promise((r) => setTimeout(r, 500));
      job = await api(`/datasets/jobs/${enc(job.job_id)}`);
    }
    if (job.state === "failed") throw new Error(job.error);
    bar.value = 1;
    status.textContent = `${job.dataset_id} built in ${fmt(job.seconds)} s`;
    await loadAssets(true);
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
  }
}

// ---------------------------------------------------------------- launch: continue with…
async function openLaunch(checkpointId) {
  const assets = await loadAssets();
  const c = checkpointRecord(checkpointId) || { policy_id: checkpointId };
  state.launchFrom = c;
  const f = $("#launch");
  f.reset();
  clearFieldErrors();
  $("#launch-from").textContent = `${checkpointId}${c.run_id ? " (" + c.run_id + " · " + c.phase + ")" : ""}`;
  $("#launch-transfer").textContent = "";
  $("#launch-status").textContent = "";
  const algSel = f.algorithm;
  algSel.textContent = "";
  for (const a of assets.algorithms) algSel.appendChild(el("option", { value: a.name }, `${a.name} (${a.paradigms.join("/")})`));
  algSel.value = c.algorithm || assets.algorithms[0].name;
  const envSel = f.env;
  envSel.textContent = "";
  const envs = assets.environments.map((e) => e.env).concat(assets.variants.map((v) => v.env));
  if (c.env && !envs.includes(c.env)) envs.unshift(c.env);
  for (const e of envs) envSel.appendChild(el("option", { value: e }, e));
  envSel.value = c.env || envs[0];
  const dsSel = f.dataset;
  dsSel.textContent = "";
  dsSel.appendChild(el("option", { value: "" }, "(none)"));
  for (const d of assets.datasets) dsSel.appendChild(el("option", { value: d.id }, `${d.id} (${d.env_id || "?"})`));
  if (c.dataset) dsSel.value = c.dataset;
  f.phase.value = uniquePhaseName(`${c.phase || "phase"}-more`);
  f.seeds.value = "0";
  // An imported checkpoint's run holds only it: a phase from it starts a new run.
  f.mode.value = c.imported ? "new_run" : "branch";
  f.mode.querySelector("option[value=branch]").disabled = !!c.imported;
  f.querySelector("[data-field=name]").hidden = f.mode.value !== "new_run";
  onAlgorithmChange();
  $("#launch-backdrop").hidden = false;
}

function uniquePhaseName(base) {
  const taken = new Set((state.run ? state.run.phases : []).map((n) => n.phase));
  let name = base.replace(/[^A-Za-z0-9_-]/g, "-"), i = 2;
  while (taken.has(name)) name = `${base}${i++}`;
  return name;
}

function currentAlgorithm() { return state.assets.algorithms.find((a) => a.name === $("#launch").algorithm.value); }

function onAlgorithmChange() {
  const f = $("#launch"), alg = currentAlgorithm(), c = state.launchFrom || {};
  f.paradigm.textContent = "";
  for (const p of alg.paradigms) f.paradigm.appendChild(el("option", { value: p }, p + (p === alg.paradigm ? " (default)" : "")));
  f.paradigm.value = alg.paradigms.includes(c.paradigm) ? c.paradigm : alg.paradigm;
  $("#launch-algo-info").textContent = alg.description;
  const tb = $("#launch-settings tbody");
  tb.textContent = "";
  for (const s of alg.settings) {
    const tr = el("tr", { class: "field", "data-field": `config.${s.name}` });
    const input = el("input", { name: `config.${s.name}`, placeholder: JSON.stringify(s.default), size: 14, "data-setting": s.name });
    const cell = el("td"); cell.appendChild(input); cell.appendChild(el("div", { class: "field-error" }));
    tr.append(el("td", { class: "mono" }, s.name), cell, el("td", { class: "muted small" }, `${s.type} · ${s.meaning}`));
    tb.appendChild(tr);
  }
  onParadigmChange();
}

function onParadigmChange() {
  const f = $("#launch"), alg = currentAlgorithm();
  const offline = f.paradigm.value === "offline";
  $("#launch-budget-unit").textContent = offline ? "gradient updates" : "environment steps";
  f.querySelector("[data-field=dataset]").hidden = !alg.needs_dataset[f.paradigm.value];
  if (!f.budget.value) f.budget.value = offline ? 1000 : 400;
}

function parseValue(text) {
  try { return JSON.parse(text); } catch (e) { return text; }
}

function launchForm() {
  const f = $("#launch");
  const form = { checkpoint: state.launchFrom.policy_id, mode: f.mode.value, phase: f.phase.value.trim(), algorithm: f.algorithm.value,
    paradigm: f.paradigm.value, env: f.env.value };
  if (f.mode.value === "new_run" && f.name.value.trim()) form.name = f.name.value.trim();
  const alg = currentAlgorithm();
  if (alg.needs_dataset[f.paradigm.value] && f.dataset.value) form.dataset = f.dataset.value;
  if (f.budget.value !== "") form.budget = Number(f.budget.value);
  const rule = f.select.value, arg = f.select_arg.value.trim();
  if (rule === "top_k") form.select = { top_k: arg === "" ? null : parseValue(arg) };
  else if (rule === "at") form.select = { at: arg.split(/[ ,]+/).filter(Boolean).map(Number) };
  else form.select = rule;
  form.seeds = f.seeds.value.split(/[ ,]+/).filter(Boolean).map((s) => (/^-?\d+$/.test(s) ? Number(s) : s));
  const ev = {};
  if (f.eval_interval.value) ev.interval = Number(f.eval_interval.value);
  if (f.eval_episodes.value) ev.episodes = Number(f.eval_episodes.value);
  if (Object.keys(ev).length) form.evaluation = ev;
  if (f.sweep.value.trim()) form.sweep = parseValue(f.sweep.value.trim());
  const config = {};
  for (const input of f.querySelectorAll("[data-setting]")) if (input.value.trim() !== "") config[input.dataset.setting] = parseValue(input.value.trim());
  if (Object.keys(config).length) form.config = config;
  return form;
}

function clearFieldErrors() {
  for (const n of document.querySelectorAll("#launch .field-error")) n.textContent = "";
  for (const n of document.querySelectorAll("#launch .field.invalid")) n.classList.remove("invalid");
}

function showFieldErrors(errors) {
  clearFieldErrors();
  for (const [field, msg] of Object.entries(errors)) {
    let box = document.querySelector(`#launch .field[data-field="${CSS.escape(field)}"]`);
    if (!box && field.startsWith("config.")) { $("#launch-settings-box").open = true; box = document.querySelector(`#launch .field[data-field="config"]`); }
    if (!box) box = document.querySelector('#launch .field[data-field="form"]');
    if (field.startsWith("config.")) $("#launch-settings-box").open = true;
    box.classList.add("invalid");
    box.querySelector(".field-error").textContent = (box.dataset.field === field ? "" : field + ": ") + msg;
  }
}

async function checkLaunch() {
  const status = $("#launch-status");
  status.className = "muted";
  status.textContent = "checking…";
  try {
    const out = await api("/launch/check", { method: "POST", json: launchForm() });
    if (!out.valid) { showFieldErrors(out.errors); status.textContent = "fix the fields marked in red"; return null; }
    clearFieldErrors();
    const t = out.transfer;
    const tr = $("#launch-transfer");
    tr.className = t.possible ? "ok" : "error";
    tr.textContent = `transfer check: ${t.summary}`;
    status.textContent = out.mode === "branch" ? `valid: a new phase '${out.phase}' of run ${out.run_id}` : "valid: a new run";
    return out;
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
    return null;
  }
}

async function downloadYaml() {
  const resp = await fetch(API + "/launch/yaml", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(launchForm()) });
  if (!resp.ok) { const b = await resp.json().catch(() => ({})); if (b.errors) showFieldErrors(b.errors); return; }
  const text = await resp.text();
  const name = (resp.headers.get("Content-Disposition") || "").match(/filename="([^"]+)"/);
  const a = el("a", { href: URL.createObjectURL(new Blob([text], { type: "application/x-yaml" })), download: name ? name[1] : "pipeline.yaml" });
  window.__lastYaml = text;
  document.body.appendChild(a);
  a.click();
  a.remove();
}

async function startLaunch(ev) {
  ev.preventDefault();
  const status = $("#launch-status");
  const checked = await checkLaunch();
  if (!checked) return;
  if (!checked.transfer.possible) { status.className = "error"; status.textContent = "the transfer check says this checkpoint cannot initialise the phase"; return; }
  status.className = "muted";
  status.textContent = "starting…";
  try {
    const out = await api("/launch", { method: "POST", json: launchForm(), control: true });
    $("#launch-backdrop").hidden = true;
    showTab("runs");
    await loadRuns(out.run_id);
    $("#progress-section").open = true;
    scheduleLive(true);
  } catch (e) {
    if (e.body && e.body.errors) showFieldErrors(e.body.errors);
    status.className = "error";
    status.textContent = e.message;
  }
}

// ---------------------------------------------------------------- compare
async function loadComparePicker() {
  const { runs } = await api("/runs");
  const box = $("#compare-picker");
  box.textContent = "";
  for (const run of runs.slice().reverse()) {
    const fs = el("fieldset", { "data-run-id": run.run_id });
    fs.appendChild(el("legend", {}, `${run.name} — ${run.run_id} (${run.status})`));
    for (const n of run.phases) {
      const key = `${run.run_id}/${n.node_id}`;
      const label = el("label", { class: "pick" });
      const cb = el("input", { type: "checkbox", class: "cmp", "data-key": key });
      cb.checked = state.compareKeys.has(key);
      cb.addEventListener("change", () => { if (cb.checked) state.compareKeys.add(key); else state.compareKeys.delete(key); });
      label.append(cb, document.createTextNode(` ${n.node_id} · ${n.algorithm} · ${n.paradigm} · ${n.status}`));
      fs.appendChild(label);
    }
    box.appendChild(fs);
  }
}

async function runCompare() {
  const status = $("#compare-status");
  const keys = [...state.compareKeys];
  if (!keys.length) { status.textContent = "tick phase runs to compare"; return; }
  status.className = "muted";
  status.textContent = "comparing…";
  try {
    const out = await api(`/compare?phase_runs=${enc(keys.join(","))}`);
    const box = $("#compare-curves");
    box.textContent = "";
    const color = Object.fromEntries(out.table.map((r, i) => [r.key, COLORS[i % COLORS.length]]));
    for (const panel of out.panels) {
      const div = el("div", { class: "panel", "data-axis": panel.axis, "data-metric": out.metric });
      div.appendChild(el("h3", {}, `${out.metric_label} vs ${panel.label} (from each phase's start)`));
      box.appendChild(div);
      makePlot(div, { xLabel: panel.label, yLabel: out.metric_label,
        series: panel.series.map((s) => ({ id: `${s.key}#${s.trial_id}`, label: `${s.key} · ${s.algorithm} · seed ${s.seed}`, color: color[s.key], points: s.points })) });
    }
    const tb = $("#compare-table tbody");
    tb.textContent = "";
    const vbox = $("#compare-videos");
    vbox.textContent = "";
    for (const r of out.table) {
      const tr = el("tr", { "data-key": r.key });
      const vids = out.videos[r.key] || [];
      const vcell = el("td", {}, vids.length ? `${vids.length}` : "–");
      tr.append(el("td", { class: "mono" }, r.key), el("td", {}, r.algorithm), el("td", {}, r.paradigm), el("td", {}, String(r.n)),
        el("td", {}, fmt(r.mean, 2)), el("td", {}, r.ci_low === null ? "–" : `[${fmt(r.ci_low, 2)}, ${fmt(r.ci_high, 2)}]`), el("td", {}, fmt(r.iqm, 2)), vcell);
      tb.appendChild(tr);
      if (vids.length) {
        const fig = el("figure", { "data-key": r.key });
        fig.appendChild(el("video", { src: `${API}/videos/${enc(vids[0])}`, controls: "", muted: "", loop: "", playsinline: "", width: 240, height: 240 }));
        fig.appendChild(el("figcaption", { class: "small" }, r.key));
        vbox.appendChild(fig);
      }
    }
    $("#compare-table").hidden = false;
    status.textContent = `${out.table.length} phase run(s) · ${out.metric_label}`;
  } catch (e) {
    status.className = "error";
    status.textContent = e.message;
  }
}

async function compareWithParent() {
  const pair = parentPhaseRun();
  if (!pair) return;
  state.compareKeys = new Set(pair);
  showTab("compare");
  await loadComparePicker();
  await runCompare();
}

// ---------------------------------------------------------------- wiring
function wire() {
  for (const b of document.querySelectorAll("#tabs button")) b.addEventListener("click", () => showTab(b.dataset.tab));
  $("#token-save").addEventListener("click", () => {
    const v = $("#token-input").value.trim();
    if (v) { sessionStorage.setItem("mprl-token", v); state.token = v; }
    showTokenState();
  });
  $("#run-stop").addEventListener("click", () => runAction("stop"));
  $("#run-resume").addEventListener("click", () => runAction("resume"));
  $("#run-compare-parent").addEventListener("click", compareWithParent);
  $("#checkpoint-continue").addEventListener("click", () => state.checkpoint && openLaunch(state.checkpoint));
  $("#lineage-fit").addEventListener("change", applyLineageFit);
  $("#dataset-build").addEventListener("submit", buildDataset);
  const f = $("#launch");
  f.algorithm.addEventListener("change", onAlgorithmChange);
  f.paradigm.addEventListener("change", onParadigmChange);
  f.mode.addEventListener("change", () => { f.querySelector("[data-field=name]").hidden = f.mode.value !== "new_run"; });
  f.addEventListener("submit", startLaunch);
  $("#launch-check").addEventListener("click", checkLaunch);
  $("#launch-yaml").addEventListener("click", downloadYaml);
  $("#launch-cancel").addEventListener("click", () => { $("#launch-backdrop").hidden = true; });
  $("#compare-go").addEventListener("click", runCompare);
  window.addEventListener("resize", () => { for (const p of state.plots) if (p.root && p.root.isConnected) p.setSize({ width: Math.max(420, Math.min(p.root.parentNode.clientWidth, 1100) - 10), height: p.height }); });
}

readToken();
wire();
loadRuns().catch((e) => {
  const list = $("#runs");
  list.textContent = "";
  list.appendChild(el("li", { class: "error" }, "Cannot reach the API: " + e.message));
});
