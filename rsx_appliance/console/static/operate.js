// The operate page (specs/console.md 5.2, 6): polls /api/operate every refresh_s; halt and resume a symbol
// in an operator session (a WebSocket to the console with an operator token).
import { $, el, fill, getJSON, setState } from "./common.js";

const S = { info: null, snap: null, op: null, opOpened: false, source: null, hidden: new Set(), shown: new Set() };
const PCT_TICKS = [[1, "0%"], [2, "50%"], [10, "90%"], [100, "99%"], [1e3, "99.9%"], [1e4, "99.99%"],
  [1e5, "99.999%"], [1e6, "99.9999%"], [1e7, "99.99999%"]];
const MAIN_STAGES = new Set(["me_in_to_sent", "total"]);   // shown by default, like rsx report's total
const us = (ns) => (ns === null || ns === undefined ? "-" : (ns / 1000).toLocaleString(undefined, { maximumFractionDigits: 3 }));

function ago(seconds) {
  if (seconds === null || seconds === undefined) return "-";
  if (seconds < 120) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  if (seconds < 7200) return `${(seconds / 60).toFixed(0)} min`;
  return `${(seconds / 3600).toFixed(1)} h`;
}

// -- the snapshot ----------------------------------------------------------------------------------------

async function poll() {
  try {
    const r = await getJSON("/api/operate");
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    S.snap = r.body;
    render();
    setState($("refreshed"), "live", new Date().toLocaleTimeString());
  } catch (e) {
    setState($("refreshed"), "down", `failed: ${e.message}`);
  }
  setTimeout(poll, 1000 * (S.snap ? S.snap.refresh_s : 2));
}

function render() {
  const s = S.snap;
  $("data-dir").textContent = s.data_dir;
  fill($("processes"), s.processes.map((p) => el("tr", { class: "process", dataset: { name: p.name, state: p.state } },
    el("td", {}, p.name), el("td", {}, p.role || "-"), el("td", {}, el("span", { class: `state ${stateClass(p.state)}` }, p.state)),
    el("td", {}, p.pid ?? "-"), el("td", {}, ago(p.uptime_s)), el("td", { class: "restarts" }, p.restarts ?? "-"),
    el("td", { class: "cpu" }, p.cpu_pct === null ? "-" : p.cpu_pct.toFixed(1)),
    el("td", {}, p.rss_bytes === null ? "-" : `${(p.rss_bytes / 1048576).toFixed(0)} MiB`),
    el("td", {}, ago(p.status_age_s)), el("td", { class: "error" }, p.error || ""))));
  renderSymbols(s.symbols);
  renderTune(s.tune);
  fill($("streams"), s.streams.map((r) => el("tr", { class: "stream", dataset: { stream: r.stream_id } },
    el("td", {}, r.stream), el("td", { class: "muted" }, `0x${r.stream_id.toString(16)}`),
    el("td", {}, r.journaled ? "journaled" : "link"), el("td", {}, r.owner || "-"),
    el("td", {}, r.seq ?? "-"), el("td", {}, r.durable_seq ?? "-"),
    el("td", {}, r.consumers.length ? r.consumers.map((c, i) => [i ? ", " : "",
      el("span", { class: c.lag ? "lagging" : "" }, `${c.name}: ${c.applied_seq ?? "-"}` +
        (c.lag === null || c.lag === undefined ? "" : ` (${c.lag})`))]) : "-"))),
  "no stream reported yet");
  renderLatency(s.latency);
}

function stateClass(state) {
  return { ready: "live", starting: "idle", stopping: "idle", stopped: "idle", "not running": "idle" }[state] || "down";
}

function renderSymbols(symbols) {
  const session = S.op && S.opOpened;
  fill($("symbols"), symbols.map((x) => el("tr", { class: "symbol", dataset: { name: x.name, status: x.status || "" } },
    el("td", {}, x.id), el("td", {}, x.name),
    el("td", {}, el("span", { class: `state ${x.status === "active" ? "live" : x.status ? "down" : "idle"}` }, x.status || "unknown")),
    el("td", {}, x.config_version ?? "-"), el("td", { class: "muted note" }, x.source || x.note || "-"),
    el("td", { class: "actions" }, session ? [
      el("button", { type: "button", class: "halt", onclick: () => act("halt", x.name) }, "halt"),
      el("button", { type: "button", class: "resume", onclick: () => act("resume", x.name) }, "resume")] : null))));
}

function renderTune(t) {
  $("tune-when").textContent = t.checked_ns ? `profile ${t.profile}, checked ${new Date(t.checked_ns / 1e6).toLocaleTimeString()}` : "";
  const sm = $("tune-summary");
  if (t.error) sm.replaceChildren(el("span", { class: "warn" }, t.error));
  else if (t.summary) {
    sm.replaceChildren(...Object.entries(t.summary).map(([k, n]) => el("span", { class: `badge ${k}`, dataset: { status: k } }, `${n} ${k}`)));
  }
  fill($("tune"), t.problems.map((r) => el("tr", { class: `tune ${r.status}` },
    el("td", {}, el("span", { class: `badge ${r.status}` }, r.status)), el("td", {}, r.id), el("td", {}, r.current ?? "-"),
    el("td", {}, r.wanted ?? "-"), el("td", {}, r.reason + (r.reboot ? " [reboot]" : "")))), t.summary ? "every knob passes" : "");
}

// -- latency: the percentile spectrum, as rsx report draws it ---------------------------------------------

function renderLatency(lat) {
  const sel = $("lat-source");
  const names = lat.sources.map((x) => x.process);
  if ([...sel.options].map((o) => o.value).join() !== names.join()) {
    sel.replaceChildren(...names.map((n) => el("option", { value: n }, n)));
    if (S.source && names.includes(S.source)) sel.value = S.source;
  }
  S.source = sel.value || null;
  const src = lat.sources.find((x) => x.process === S.source);
  const mode = $("lat-mode").value;
  if (!src || !src.stages.length) {
    $("lat-note").textContent = src ? `no latency from ${src.process}: ${src.note}` :
      "no latency source: no matching engine is configured";
    $("lat-window").textContent = "";
    fill($("latency"), [], "no data");
    $("latency-chart").hidden = true;
    return;
  }
  $("lat-note").textContent = "";
  $("latency-chart").hidden = false;
  $("lat-window").textContent = mode !== "window" ? "since the process started"
    : src.restarted ? `since the process restarted, ${src.window_s} s ago` : `last ${src.window_s} s (window ${lat.window_s} s)`;
  const stages = src.stages.map((st) => ({ name: st.name, v: st[mode] }));
  let top = 10;
  const traces = [];
  for (const st of stages) {
    const sp = st.v.spectrum;
    if (!sp.x.length) continue;
    top = Math.max(top, sp.x[sp.x.length - 1]);
    const visible = S.shown.has(st.name) || (!S.hidden.has(st.name) && MAIN_STAGES.has(st.name)) ? true : "legendonly";
    traces.push({ type: "scatter", mode: "lines+markers", marker: { size: 4 }, name: st.name, uid: st.name,
      x: sp.x, y: sp.y_ns.map((v) => v / 1000), customdata: sp.labels, visible,
      hovertemplate: "%{customdata}: %{y:,.3f} µs<extra>%{fullData.name}</extra>" });
  }
  const ticks = PCT_TICKS.filter(([v]) => v <= top * 1.5);
  Plotly.react("latency-chart", traces, {
    title: { text: `${S.source}: percentile spectrum (x = 1/(1-p), log)` }, height: 420, margin: { t: 50 },
    xaxis: { type: "log", title: { text: "percentile" }, tickvals: ticks.map((t) => t[0]), ticktext: ticks.map((t) => t[1]) },
    yaxis: { title: { text: "latency (µs)" }, rangemode: "tozero" }, legend: { title: { text: "click to show/hide" } },
    uirevision: `${S.source}:${mode}`, template: undefined,
  }, { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["sendDataToCloud", "lasso2d", "select2d"] });
  fill($("latency"), stages.map((st) => {
    const m = st.v.summary;
    return el("tr", { class: "stage", dataset: { stage: st.name } }, el("td", {}, st.name), el("td", {}, m.count.toLocaleString()),
      el("td", {}, us(m.p50_ns)), el("td", {}, us(m.p90_ns)), el("td", {}, us(m.p99_ns)), el("td", {}, us(m.p99_9_ns)),
      el("td", {}, us(m.p99_99_ns)), el("td", {}, us(m.max_ns)), el("td", {}, us(m.mean_ns)));
  }), "no data");
}

function onLegendClick(ev) {
  // keep the trader's choice across refreshes (the page redraws every refresh_s)
  const name = ev.data[ev.curveNumber].name;
  const nowVisible = ev.data[ev.curveNumber].visible !== "legendonly";
  if (nowVisible) { S.hidden.add(name); S.shown.delete(name); } else { S.shown.add(name); S.hidden.delete(name); }
  renderLatency(S.snap.latency);
  return false;
}

// -- operator session ------------------------------------------------------------------------------------

function opMsg(text, cls) { const m = $("op-msg"); m.className = `msg ${cls}`; m.textContent = text; }

async function opOpen(ev) {
  ev.preventDefault();
  const token = $("op-token").value.trim();
  if (!token) { opMsg("paste an operator token (rsx token --operator NAME)", "reject"); return; }
  $("op-token").value = "";
  // the browser hides why an upgrade is refused: ask first (nothing is spent by asking)
  const r = await getJSON("/api/token?for=operator", { headers: { Authorization: "Bearer " + token } });
  if (!r.ok || !r.body.valid) {
    const e = r.body && r.body.E ? r.body.E : [r.status, "the console could not check the token"];
    opMsg(`operator token refused (E ${e[0]}): ${e[1]}`, "reject");
    return;
  }
  if (S.op) S.op.close(1000);
  const ws = new WebSocket(`ws://${location.host}/ws/operator`, ["rsx.v1", "bearer." + token]);
  S.op = ws;
  S.opOpened = false;
  setState($("op-state"), "idle", "connecting");
  ws.onopen = () => { S.opOpened = true; $("op-logout").disabled = false; };
  ws.onmessage = (e) => {
    const m = JSON.parse(e.data);
    if (m.hello) {
      setState($("op-state"), "live", `${m.hello[0]} until ${new Date(m.hello[1] / 1e6).toLocaleTimeString()}`);
      opMsg(`operator session open: ${m.hello[0]}`, "ok");
      if (S.snap) renderSymbols(S.snap.symbols);
    } else if (m.done) {
      opMsg(`${m.done[0]} ${m.done[1]}: ${m.done[2]} (config version ${m.done[3]})`, "ok");
    } else if (m.E) {
      opMsg(`refused (E ${m.E[0]}): ${m.E[1]}`, "reject");
    }
  };
  ws.onclose = (e) => {
    if (ws !== S.op) return;
    S.op = null;
    $("op-logout").disabled = true;
    if (!S.opOpened) opMsg("the console refused the session: the token was already used", "reject");
    else opMsg(`operator session closed${e.code === 4003 ? ": the token expired" : ""}`, "notice");
    S.opOpened = false;
    setState($("op-state"), "idle", "read-only");
    if (S.snap) renderSymbols(S.snap.symbols);
  };
}

function act(action, symbol) {
  if (!S.op || S.op.readyState !== WebSocket.OPEN) { opMsg("no operator session", "reject"); return; }
  S.op.send(JSON.stringify({ [action]: [symbol] }));
  opMsg(`${action} ${symbol}: sent`, "notice");
}

async function start() {
  $("op-form").addEventListener("submit", opOpen);
  $("op-logout").addEventListener("click", () => { if (S.op) S.op.close(1000); });
  $("lat-source").addEventListener("change", () => { S.source = $("lat-source").value; renderLatency(S.snap.latency); });
  $("lat-mode").addEventListener("change", () => renderLatency(S.snap.latency));
  Plotly.newPlot("latency-chart", [], { height: 200 }, { displaylogo: false });
  $("latency-chart").on("plotly_legendclick", onLegendClick);
  await poll();
  document.body.dataset.ready = "1";
}

start();
