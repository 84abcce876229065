// The Vantage edge dashboard: one model, two sources. Live, it paints from `api/summary` and
// follows `api/stream`; in a report file it reads the report document embedded in the page.
// Either becomes the same model (`fromSummary`, `fromReport`) and every view draws from the
// model alone. Missing figures stay missing (shown as "—"), never zero.
"use strict";

(() => {
  const CLASSES = ["1xx", "2xx", "3xx", "4xx", "5xx", "other"];
  const LATENCY = [["p50", "p50"], ["p90", "p90"], ["p99", "p99"], ["p999", "p99.9"]];
  // With no summary for this long the numbers on screen are no longer live.
  const SILENCE_MS = 5000;
  // A stream the browser gave up on is opened again after this long, doubled up to the max.
  const RETRY_MIN_MS = 1000;
  const RETRY_MAX_MS = 10000;
  // Rows drawn at once; more are appended a task at a time, so a thousand groups never
  // hold the page for long.
  const CHUNK_ROWS = 300;
  // Bars in the chart at most (about one per two pixels of its width), and at least (five
  // minutes of the live history's 10 s steps).
  const MAX_BARS = 360;
  const MIN_CHART_STEPS = 30;
  // A selected row's hour is asked again this often.
  const GROUP_REFRESH_MS = 10000;

  const $ = (id) => document.getElementById(id);

  // --- Formatting: units always written, missing values shown as missing. ---

  const MISSING = "—";
  const integer = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });

  function count(n) {
    return n == null ? MISSING : integer.format(n);
  }

  function rate(rps) {
    if (rps == null) return MISSING;
    const digits = rps >= 100 ? 0 : rps >= 10 ? 1 : 2;
    return `${rps.toFixed(digits)} rps`;
  }

  function duration(seconds) {
    if (seconds == null) return MISSING;
    if (seconds < 1e-3) return `${Math.round(seconds * 1e6)} µs`;
    if (seconds < 1) return `${(seconds * 1e3).toFixed(seconds < 0.01 ? 2 : seconds < 0.1 ? 1 : 0)} ms`;
    return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  }

  function clock(unixSeconds) {
    if (unixSeconds == null) return MISSING;
    const date = new Date(unixSeconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  }

  function day(unixSeconds) {
    const date = new Date(unixSeconds * 1000);
    const pad = (n) => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  }

  function age(seconds) {
    if (seconds == null) return MISSING;
    if (seconds < 90) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
    if (seconds < 5400) return `${(seconds / 60).toFixed(0)} min`;
    return `${(seconds / 3600).toFixed(1)} h`;
  }

  // A whole number of seconds, as a step's length.
  function span(seconds) {
    if (seconds < 90) return `${seconds} s`;
    if (seconds < 5400) return `${Math.round(seconds / 60)} min`;
    if (seconds < 172800) return `${Math.round(seconds / 3600)} h`;
    return `${Math.round(seconds / 86400)} d`;
  }

  function percent(share) {
    return share == null ? MISSING : `${(share * 100).toFixed(share < 0.01 ? 2 : 1)} %`;
  }

  // --- The model. ---

  // A group row: {key: {dimension: value}, requests, rps, classes: {"2xx": n, ...},
  // latency: {p50, p90, p99, p999} (seconds) or null, stale}.
  function row(group, latency) {
    return {
      key: group.key,
      requests: group.requests,
      rps: group.rps,
      classes: group.status_class,
      latency,
      stale: Boolean(group.stale),
    };
  }

  // `/api/summary` (and each event of `/api/stream`).
  function fromSummary(doc) {
    const now = doc.now;
    const windows = (doc.windows || []).map((w) => ({
      name: w.window,
      covered: w.covered_seconds,
      partial: w.partial || [],
      groups: w.groups.map((g) => row(g, g.latency_seconds)),
    }));
    return {
      live: true,
      format: doc.format,
      groupBy: doc.group_by || [],
      groupableBy: doc.groupable_by || doc.group_by || [],
      waiting: doc.waiting || null,
      stale: doc.stale === true && windows.length > 0,
      staleAfter: doc.stale_after_seconds,
      windows,
      health: {
        lag: doc.lag_seconds,
        lastLine: doc.last_line_timestamp,
        lines: doc.lines || null,
        malformedSamples: doc.malformed_samples || [],
        rotations: doc.rotations,
        checkpointAge: doc.checkpoint_last_success == null ? null : now - doc.checkpoint_last_success,
        checkpointErrors: doc.checkpoint_errors,
        filesOpen: doc.files_open,
        clockSkew: doc.clock_skew || null,
      },
      anomalies: doc.anomalies || [],
      history: doc.history || null,
      recent: doc.recent_requests || null,
      slowest: doc.slowest_requests || null,
      reconcile: doc.reconcile || null,
    };
  }

  // The `report --json` document embedded in a report file: the whole log is one window.
  function fromReport(doc) {
    const latency = (l) => (l && l.count > 0 ? l : null);
    const last = doc.time && doc.time.last ? Date.parse(doc.time.last) / 1000 : null;
    return {
      live: false,
      format: doc.format,
      groupBy: doc.group_by || [],
      inputs: doc.inputs || [],
      waiting: null,
      stale: false,
      windows: [{
        name: "whole log",
        covered: doc.time ? doc.time.seconds : null,
        partial: [],
        groups: (doc.groups || []).map((g) => row(g, latency(g.latency_seconds))),
      }],
      health: {
        lastLine: last,
        lines: doc.lines || null,
        malformedSamples: doc.malformed_samples || [],
      },
      anomalies: [],
      timeline: doc.timeline || null,
      reconcile: null,
    };
  }

  // --- Page state. ---

  const state = {
    model: null,
    window: null,
    sort: { column: "requests", descending: true },
    // Which drawing of the table the chunks being appended belong to.
    tableDrawing: 0,
    downSince: null,
    lastEvent: 0,
    // The dimensions the table groups by when coarser than the server's (live only), as
    // `api/summary?by=` takes them; null: the server's own.
    by: null,
    // The row whose hour the chart shows (live only): its key, and its hour once fetched.
    selected: null,
    selectedHour: null,
  };

  // --- DOM helpers. ---

  function el(tag, attributes, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      if (value == null || value === false) continue;
      if (name === "class") node.className = value;
      else if (name === "text") node.textContent = value;
      else node.setAttribute(name, value === true ? "" : value);
    }
    for (const child of children) {
      if (child != null) node.append(child);
    }
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";

  function svg(tag, attributes) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attributes || {})) node.setAttribute(name, value);
    return node;
  }

  function show(node, visible, text) {
    node.hidden = !visible;
    if (visible && text != null) node.textContent = text;
  }

  // --- Views. ---

  function currentWindow() {
    const windows = state.model.windows;
    return windows.find((w) => w.name === state.window) || windows[0] || null;
  }

  function renderSource() {
    const m = state.model;
    const parts = [];
    if (m.format) parts.push(`format ${m.format}`);
    if (m.groupBy.length) parts.push(`by ${m.groupBy.join(", ")}`);
    if (!m.live && m.inputs && m.inputs.length) parts.push(`report of ${m.inputs.join(", ")}`);
    $("source").textContent = parts.join(" · ");
    $("snapshot").hidden = !m.live;
  }

  function renderWindows() {
    const fieldset = $("windows");
    const names = state.model.windows.map((w) => w.name);
    if (!names.includes(state.window)) {
      state.window = names.includes("5m") ? "5m" : names[0] || null;
    }
    const existing = [...fieldset.querySelectorAll("input")].map((i) => i.value);
    if (existing.join() !== names.join()) {
      fieldset.querySelectorAll("label").forEach((l) => l.remove());
      for (const name of names) {
        const input = el("input", { type: "radio", name: "window", value: name });
        input.addEventListener("change", () => {
          state.window = name;
          renderAll();
        });
        fieldset.append(el("label", {}, input, el("span", { text: name })));
      }
    }
    fieldset.hidden = names.length < 2;
    for (const input of fieldset.querySelectorAll("input")) input.checked = input.value === state.window;
  }

  function renderBanners() {
    const m = state.model;
    const w = currentWindow();
    show($("banner-waiting"), Boolean(m.waiting), `Waiting: ${m.waiting}`);
    const after = m.staleAfter == null ? "" : ` for over ${age(m.staleAfter)}`;
    const none = m.health.lines && m.health.lines.total === 0;
    show($("banner-stale"), m.stale, none
      ? "Stale: no log line read yet. The proxy may be idle, or its log does not reach this sidecar."
      : `Stale: no log line${after}. The proxy may be idle, or its log no longer reaches this sidecar; the figures below are the last known.`);
    const partial = w ? w.partial : [];
    show($("banner-partial"), partial.length > 0, `Partial (${w && w.name}): ${partial.join("; ")}`);
    const anomalies = m.anomalies.map((a) => `${a.kind} on ${a.router}`);
    show($("banner-anomalies"), anomalies.length > 0, `Anomalies: ${anomalies.join(", ")} (details under the chart)`);
  }

  function renderConnection() {
    const connection = $("connection");
    if (!state.model || !state.model.live) {
      connection.textContent = "report: the data of one reading, not live";
      connection.className = "connection";
      return;
    }
    const down = state.downSince != null;
    connection.textContent = down ? `disconnected since ${clock(state.downSince)}` : "live";
    connection.className = `connection ${down ? "down" : "live"}`;
    document.body.classList.toggle("offline", down);
    show($("banner-disconnected"), down,
      `Disconnected since ${clock(state.downSince)}: the numbers shown are not live. Reconnecting…`);
  }

  function renderHealth() {
    const h = state.model.health;
    const dl = $("health");
    dl.replaceChildren();
    const item = (label, value, bad) => {
      dl.append(el("dt", { text: label }), el("dd", { class: `live-value${bad ? " bad" : ""}`, text: value }));
    };
    if ("lag" in h) item("Lag behind the clock", age(h.lag), h.lag == null || h.lag > 60);
    item("Last line", h.lastLine == null ? MISSING : `${clock(h.lastLine)} (${day(h.lastLine)})`);
    const lines = h.lines;
    if (lines) {
      item("Lines", `${count(lines.total)} read: ${count(lines.parsed)} parsed, ${count(lines.malformed)} malformed, ${count(lines.filtered)} filtered`);
      const share = lines.total > 0 ? lines.malformed / lines.total : null;
      item("Malformed share", percent(share), share != null && share > 0.01);
    } else {
      item("Lines", MISSING);
    }
    if ("rotations" in h) {
      const rotations = h.rotations ? Object.entries(h.rotations) : null;
      item("Rotations", rotations == null ? MISSING
        : rotations.length === 0 ? "none" : rotations.map(([kind, n]) => `${count(n)} ${kind}`).join(", "));
    }
    if ("checkpointAge" in h) {
      const errors = h.checkpointErrors ? ` (${count(h.checkpointErrors)} failed writes)` : "";
      item("Checkpoint age", h.checkpointAge == null ? `${MISSING} none written` : `${age(h.checkpointAge)}${errors}`,
        Boolean(h.checkpointErrors));
    }
    if ("filesOpen" in h) item("Files followed", count(h.filesOpen), h.filesOpen === 0);
    if (h.clockSkew && h.clockSkew.ahead + h.clockSkew.behind > 0) {
      item("Untrusted timestamps", `${count(h.clockSkew.ahead)} ahead, ${count(h.clockSkew.behind)} behind`, true);
    }
    const samples = h.malformedSamples || [];
    const details = $("malformed");
    details.hidden = samples.length === 0;
    // Live, a sample is where and why (its text is in the guarded snapshot); a report file
    // has the text too.
    $("malformed-samples").replaceChildren(...samples.map((s) => el("li", {},
      el("span", { text: `line ${s.line_number}: ${s.error}` }),
      s.text == null ? null : el("br"), s.text == null ? null : el("code", { text: s.text }))));
  }

  // The chart: requests per step as bars, p50/p99 as lines when known, anomalies shaded.
  function renderChart() {
    const m = state.model;
    const box = $("chart");
    const series = fewer(chartSeries(m), MAX_BARS);
    $("chart-all").hidden = state.selected == null;
    if (!series) {
      const none = state.selected ? `${keyText(state.selected)}: no request in the last hour.` : "No history yet.";
      box.replaceChildren(el("p", { class: "missing", text: none }));
      $("chart-caption").textContent = "";
      return;
    }
    const caption = series.caption(series.step);
    $("chart-caption").textContent = caption;
    const width = 720, height = 200, left = 48, right = 48, top = 8, bottom = 22;
    const plotW = width - left - right, plotH = height - top - bottom;
    const n = series.requests.length;
    const largest = (values) => (values || []).reduce((a, v) => (v != null && (a == null || v > a) ? v : a), null);
    const maxRate = Math.max(1e-9, largest(series.requests) || 0) / series.step;
    const maxLatency = largest([largest(series.p50), largest(series.p99)]);
    const total = series.requests.reduce((sum, v) => sum + (v || 0), 0);
    const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "data-requests": total,
      "aria-label": `${caption}; up to ${rate(maxRate)}${maxLatency == null ? "" : `, p99 up to ${duration(maxLatency)}`}` });
    const x = (i) => left + (i / Math.max(1, n)) * plotW;
    const label = (text, tx, ty, anchor) => {
      const t = svg("text", { x: tx, y: ty, "text-anchor": anchor });
      t.textContent = text;
      root.append(t);
    };
    const barW = Math.max(0.5, plotW / Math.max(1, n) - 0.5);
    const end = series.start + n * series.step;
    for (const a of series.anomalies || []) {
      if (a.since == null || a.since >= end) continue;
      const from = Math.max(0, (a.since - series.start) / series.step);
      const shade = svg("rect", { class: "anomaly", x: x(from), y: top, width: Math.max(2, x(n) - x(from)), height: plotH });
      const title = svg("title");
      title.textContent = anomalyText(a);
      shade.append(title);
      root.append(shade);
    }
    for (const [i, requests] of series.requests.entries()) {
      if (requests == null) continue;
      const h = (requests / series.step / maxRate) * plotH;
      root.append(svg("rect", { class: "rate", x: x(i), y: top + plotH - h, width: barW, height: Math.max(0, h) }));
      // The status classes stacked from the bottom: 5xx, then 4xx, the rest above them.
      let base = top + plotH;
      for (const [values, cls] of [[series.errors, "errors"], [series.clientErrors, "client-errors"]]) {
        const n = values ? values[i] : null;
        if (!n) continue;
        const e = (n / series.step / maxRate) * plotH;
        base -= e;
        root.append(svg("rect", { class: cls, x: x(i), y: base, width: barW, height: e }));
      }
    }
    const unknown = series.requests.findIndex((r) => r != null);
    if (unknown > 0) {
      label("not watched", x(unknown / 2), top + plotH / 2, "middle");
    }
    const line = (values, cls) => {
      if (!values || maxLatency == null || maxLatency <= 0) return;
      let d = "";
      let pen = "M";
      values.forEach((v, i) => {
        if (v == null) { pen = "M"; return; }
        // A step per point: one known point alone still shows.
        const y = (top + plotH - (v / maxLatency) * plotH).toFixed(1);
        d += `${pen}${x(i).toFixed(1)},${y} L${(x(i) + barW).toFixed(1)},${y} `;
        pen = "L";
      });
      if (d) root.append(svg("path", { class: cls, d }));
    };
    line(series.p50, "p50");
    line(series.p99, "p99");
    root.append(svg("line", { class: "axis", x1: left, y1: top + plotH, x2: left + plotW, y2: top + plotH }));
    label(rate(maxRate), left - 4, top + 10, "end");
    label("0", left - 4, top + plotH, "end");
    if (maxLatency != null) label(duration(maxLatency), left + plotW + 4, top + 10, "start");
    label(clock(series.start), left, height - 6, "start");
    label(clock(series.start + n * series.step), left + plotW, height - 6, "end");
    const key = (name, text) => el("li", {}, el("span", { class: `swatch swatch-${name}` }), text);
    const legend = el("ul", { class: "legend" }, key("rate", "requests per second"),
      series.clientErrors ? key("client-errors", "4xx per second") : null,
      series.errors ? key("errors", "5xx per second") : null,
      series.p50 ? key("p50", "p50") : null, series.p99 ? key("p99", "p99") : null);
    box.replaceChildren(root, legend);
  }

  // At most `max` points, each the sum of a run of steps (the largest for latencies, so a
  // spike stays visible): a report's day of one-second steps is 86 400 of them.
  function fewer(series, max) {
    if (!series || series.requests.length <= max) return series;
    const per = Math.ceil(series.requests.length / max);
    const fold = (values, combine) => {
      if (!values) return values;
      const folded = [];
      for (let i = 0; i < values.length; i += per) {
        folded.push(values.slice(i, i + per).reduce((a, v) => (v == null ? a : a == null ? v : combine(a, v)), null));
      }
      return folded;
    };
    const sum = (a, b) => a + b;
    return { ...series, step: series.step * per, requests: fold(series.requests, sum),
      errors: fold(series.errors, sum), clientErrors: fold(series.clientErrors, sum),
      p50: fold(series.p50, Math.max), p99: fold(series.p99, Math.max) };
  }

  // What the chart shows: the server's recent history live, the log's timeline in a report.
  function chartSeries(m) {
    if (state.selected) {
      const h = state.selectedHour;
      if (!h) return null;
      const what = keyText(state.selected);
      return { start: h.start_epoch_second, step: h.step_seconds, requests: h.requests,
        errors: h.errors_5xx, clientErrors: h.errors_4xx, p50: h.p50_seconds, p99: h.p99_seconds,
        caption: (step) => `${what}, the last hour in steps of ${span(step)}` };
    }
    if (m.history && m.history.requests && m.history.requests.length) {
      const h = m.history;
      // The hour before this process watched is unknown: shown as such, but no more of it
      // than makes the chart at least MIN_CHART_STEPS long.
      const n = h.requests.length;
      const known = h.requests.findIndex((r) => r != null);
      const from = known < 0 ? 0 : Math.min(known, Math.max(0, n - MIN_CHART_STEPS));
      const cut = (values) => (values ? values.slice(from) : values);
      const start = h.start_epoch_second + from * h.step_seconds;
      const what = from > 0 ? `All groups since ${clock(start)}` : "All groups, the last hour";
      return { start, step: h.step_seconds, requests: cut(h.requests), errors: cut(h.errors_5xx),
        clientErrors: cut(h.errors_4xx),
        p50: cut(h.p50_seconds), p99: cut(h.p99_seconds), anomalies: m.anomalies,
        caption: (step) => `${what}, in steps of ${span(step)}; anomalies shaded` };
    }
    if (m.timeline && m.timeline.requests && m.timeline.requests.length) {
      const t = m.timeline;
      return { start: t.start_epoch_second, step: t.step_seconds, requests: t.requests,
        caption: (step) => `All groups, the whole log in steps of ${span(step)} (log time)` };
    }
    return null;
  }

  // An anomaly with its context: what, where, since when, against which baseline.
  function anomalyText(a) {
    const since = a.since == null ? "" : ` since ${clock(a.since)}`;
    let context = "";
    if (a.baseline_requests_per_minute != null) {
      context = a.kind === "errors"
        ? `: 5xx ${count(a.minute_errors_5xx)} of ${count(a.minute_requests)} this minute, baseline share ${percent(a.baseline_error_share)}`
        : `: ${count(a.minute_requests)} requests this minute, baseline ${count(a.baseline_requests_per_minute)} a minute`;
    }
    return `${a.kind} on ${a.router}${since}${context}`;
  }

  function renderAnomalies() {
    const list = $("anomalies");
    list.replaceChildren(...state.model.anomalies.map((a) => el("li", { class: "live-value", text: anomalyText(a) })));
  }

  // The table's columns: one per grouping dimension, then the figures.
  function columns() {
    const keys = state.model.groupBy.map((d) => ({ id: `key:${d}`, label: d, key: d }));
    return [
      ...keys,
      { id: "requests", label: "requests", num: true, value: (r) => r.requests, text: (r) => count(r.requests) },
      { id: "rps", label: "rps", num: true, value: (r) => r.rps, text: (r) => rate(r.rps) },
      { id: "errors", label: "status mix", value: (r) => share(r, "5xx") },
      ...LATENCY.map(([field, label]) => ({ id: field, label, num: true,
        value: (r) => (r.latency ? r.latency[field] : null), text: (r) => duration(r.latency ? r.latency[field] : null) })),
    ];
  }

  function share(r, cls) {
    return r.requests > 0 ? (r.classes[cls] || 0) / r.requests : null;
  }

  function keyValue(r, dimension) {
    const value = r.key[dimension];
    return value == null ? "" : String(value);
  }

  // The filters as one test of a key and its status classes: groups and requests alike.
  function passes(key, hasClass) {
    const text = $("filter-text").value.trim().toLowerCase();
    const cls = $("filter-class").value;
    const router = $("filter-router").value;
    const value = (d) => (key[d] == null ? "" : String(key[d]));
    if (text && !state.model.groupBy.some((d) => value(d).toLowerCase().includes(text))) return false;
    if (cls && !hasClass(cls)) return false;
    if (router && value("router") !== router) return false;
    return true;
  }

  function filtered(groups) {
    return groups.filter((r) => passes(r.key, (cls) => r.classes[cls] > 0));
  }

  function statusClass(status) {
    return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : "other";
  }

  // One table of requests (the tail or the slowest).
  function renderRequests(id, requests) {
    const table = $(id);
    const dims = state.model.groupBy;
    // A format that logs no upstream time (or trace id) gets no column of dashes.
    const upstream = requests.some((r) => r.upstream_seconds != null);
    const traced = requests.some((r) => r.trace_id != null);
    table.tHead.replaceChildren(el("tr", {},
      el("th", { scope: "col", text: "time" }), ...dims.map((d) => el("th", { scope: "col", text: d })),
      el("th", { scope: "col", text: "method" }), el("th", { scope: "col", class: "num", text: "status" }),
      el("th", { scope: "col", class: "num", text: "duration" }),
      upstream ? el("th", { scope: "col", class: "num", text: "upstream" }) : null,
      traced ? el("th", { scope: "col", text: "trace id" }) : null));
    const rows = requests.filter((r) => passes(r.key, (cls) => statusClass(r.status) === cls));
    table.tBodies[0].replaceChildren(...rows.map((r) => el("tr", {},
      el("td", { class: "live-value", text: clock(r.at) }),
      ...dims.map((d) => el("td", { class: "key", title: r.key[d], text: r.key[d] == null ? MISSING : r.key[d] })),
      el("td", { text: r.method == null ? MISSING : r.method }),
      el("td", { class: `num c-text-${statusClass(r.status)}`, text: r.status == null ? MISSING : String(r.status) }),
      el("td", { class: "num live-value", text: duration(r.duration_seconds) }),
      upstream ? el("td", { class: "num live-value", text: duration(r.upstream_seconds) }) : null,
      traced ? el("td", { class: "key", text: r.trace_id == null ? MISSING : r.trace_id }) : null)));
    if (rows.length === 0) {
      const columns = dims.length + 4 + (upstream ? 1 : 0) + (traced ? 1 : 0);
      table.tBodies[0].append(el("tr", {}, el("td", { colspan: columns, class: "missing",
        text: requests.length ? "No request matches the filters." : "None yet." })));
    }
  }

  function renderRequestPanel() {
    const m = state.model;
    $("requests-panel").hidden = m.recent == null;
    if (m.recent == null) return;
    renderRequests("slowest", m.slowest || []);
    renderRequests("recent", [...m.recent].reverse());
  }

  function sorted(groups, cols) {
    const column = cols.find((c) => c.id === state.sort.column) || cols[0];
    const direction = state.sort.descending ? -1 : 1;
    const value = column.key ? (r) => keyValue(r, column.key) : column.value;
    return [...groups].sort((a, b) => {
      const va = value(a), vb = value(b);
      // Missing values last, whichever the direction.
      if (va == null || vb == null) return va == null ? (vb == null ? 0 : 1) : -1;
      const order = typeof va === "string" ? va.localeCompare(vb) : va - vb;
      return order * direction;
    });
  }

  function renderHead(cols) {
    const thead = $("groups").tHead;
    const ids = cols.map((c) => c.id).join();
    if (thead.dataset.columns !== ids) {
      thead.dataset.columns = ids;
      const tr = el("tr");
      for (const c of cols) {
        const button = el("button", { type: "button", text: c.label });
        button.addEventListener("click", () => {
          state.sort = state.sort.column === c.id
            ? { column: c.id, descending: !state.sort.descending }
            : { column: c.id, descending: !c.key };
          renderTable();
        });
        tr.append(el("th", { scope: "col", class: c.num ? "num" : null, "data-col": c.id }, button));
      }
      thead.replaceChildren(tr);
    }
    for (const th of thead.querySelectorAll("th")) {
      const sorted = th.dataset.col === state.sort.column;
      if (sorted) th.setAttribute("aria-sort", state.sort.descending ? "descending" : "ascending");
      else th.removeAttribute("aria-sort");
    }
  }

  function mix(r) {
    const bar = el("span", { class: "mix", "aria-hidden": "true" });
    const parts = [];
    for (const cls of CLASSES) {
      const n = r.classes[cls] || 0;
      if (n === 0) continue;
      const part = el("span", { class: `c${cls}` });
      part.style.width = `${(100 * n) / r.requests}%`;
      bar.append(part);
      parts.push(`${cls} ${count(n)}`);
    }
    return [bar, el("span", { class: "mix-text live-value", text: parts.join(" · ") || MISSING })];
  }

  function renderTable() {
    const w = currentWindow();
    const cols = columns();
    renderHead(cols);
    renderRouterFilter(w ? w.groups : []);
    const all = w ? w.groups : [];
    const rows = sorted(filtered(all), cols);
    $("groups-caption").textContent = w
      ? `${state.model.live ? `Last ${w.name}` : "The whole log"}${w.covered != null ? ` (${age(w.covered)} covered)` : ""}`
      : "No data yet";
    $("row-count").textContent = `${count(rows.length)} of ${count(all.length)} groups`;
    const tbody = $("groups").tBodies[0];
    const drawing = ++state.tableDrawing;
    const chunk = (from) => {
      const fragment = document.createDocumentFragment();
      for (const r of rows.slice(from, from + CHUNK_ROWS)) fragment.append(groupRow(r, cols));
      return fragment;
    };
    if (rows.length === 0) {
      const why = all.length === 0 ? (state.model.stale ? "No request in this window: stale, see above." : "No request in this window.") : "No group matches the filters.";
      tbody.replaceChildren(el("tr", {}, el("td", { colspan: cols.length, class: "missing", text: why })));
      return;
    }
    tbody.replaceChildren(chunk(0));
    const more = (from) => {
      if (from >= rows.length || drawing !== state.tableDrawing) return;
      tbody.append(chunk(from));
      setTimeout(() => more(from + CHUNK_ROWS), 0);
    };
    setTimeout(() => more(CHUNK_ROWS), 0);
  }

  function groupRow(r, cols) {
    const selected = state.selected != null && sameKey(state.selected, r.key);
    const classes = [r.stale ? "stale" : null, selected ? "selected" : null].filter(Boolean).join(" ");
    const tr = el("tr", { class: classes || null });
    if (state.model.live) {
      // Live, a row is a button for its own chart.
      tr.tabIndex = 0;
      tr.setAttribute("aria-selected", String(selected));
      tr.addEventListener("click", () => select(r.key));
      tr.addEventListener("keydown", (event) => {
        if (event.key === "Enter" || event.key === " ") {
          event.preventDefault();
          select(r.key);
        }
      });
    }
    for (const c of cols) {
      if (c.key) {
        const value = keyValue(r, c.key);
        const td = el("td", { class: "key", "data-col": c.id, title: value, text: value || MISSING });
        if (c === cols[0] && r.stale) td.append(el("span", { class: "tag", text: "stale" }));
        tr.append(td);
      } else if (c.id === "errors") {
        tr.append(el("td", { "data-col": c.id }, ...mix(r)));
      } else {
        // The exact figure beside its rounded text, for people (a tooltip) and tests.
        const value = c.value(r);
        tr.append(el("td", { class: `num live-value${value == null ? " missing" : ""}`, "data-col": c.id,
          "data-value": value, title: value == null ? "missing" : String(value), text: c.text(r) }));
      }
    }
    return tr;
  }

  function keyText(key) {
    return state.model.groupBy.map((d) => `${d}=${key[d] == null ? MISSING : key[d]}`).join(" ");
  }

  function sameKey(a, b) {
    return state.model.groupBy.every((d) => a[d] === b[d]);
  }

  // Charts one group's last hour (`null`: every group again), asked of the server now and
  // every GROUP_REFRESH_MS while selected.
  function select(key) {
    state.selected = key;
    state.selectedHour = null;
    clearTimeout(state.selectedTimer);
    renderTable();
    renderChart();
    if (key != null) fetchGroup(key);
  }

  function fetchGroup(key) {
    const query = state.model.groupBy
      .map((d) => `key=${encodeURIComponent(key[d] == null ? "" : key[d])}`).join("&");
    fetch(`api/group?${query}`, { cache: "no-store" })
      .then((response) => (response.ok ? response.json() : null))
      .catch(() => null)
      .then((hour) => {
        if (state.selected !== key) return;
        state.selectedHour = hour;
        renderChart();
        state.selectedTimer = setTimeout(() => fetchGroup(key), GROUP_REFRESH_MS);
      });
  }

  function renderRouterFilter(groups) {
    const hasRouter = state.model.groupBy.includes("router");
    $("filter-router-label").hidden = !hasRouter;
    if (!hasRouter) return;
    const select = $("filter-router");
    const routers = [...new Set(groups.map((r) => keyValue(r, "router")))].sort();
    const current = [...select.options].slice(1).map((o) => o.value);
    if (current.join("\n") === routers.join("\n")) return;
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "", text: "any" }),
      ...routers.map((r) => el("option", { value: r, text: r })));
    select.value = routers.includes(chosen) ? chosen : "";
  }

  function renderReconcile() {
    const r = state.model.reconcile;
    const panel = $("reconcile-panel");
    panel.hidden = !r;
    if (!r) return;
    const notes = [];
    if (!r.started) notes.push("Waiting for every service instance to be scraped once.");
    if (r.partial_reasons && r.partial_reasons.length) notes.push(`Partial: ${r.partial_reasons.join("; ")}`);
    $("reconcile-note").textContent = notes.join(" ") || "Since the start of the reconciliation.";
    const rows = (r.routes || []).map((route) => {
      const reasons = Object.entries(route.reasons || {}).filter(([, n]) => n > 0)
        .map(([reason, n]) => `${reason.replace(/_/g, " ")} ${count(n)}`)
        .concat(route.unmeasured ? [`not measured by the service ${count(route.unmeasured)}`] : [])
        .join(", ");
      const p99 = route.latency && route.latency.at ? route.latency.at.find((a) => a.quantile === 0.99) : null;
      const split = p99 ? `${duration(p99.proxy_seconds)} / ${duration(p99.in_front_of_handler_seconds)} / ${duration(p99.handler_seconds)}` : MISSING;
      return el("tr", { class: route.partial ? "stale" : null },
        el("td", { class: "key", text: route.route }),
        el("td", { class: "num live-value", text: count(route.edge_requests) }),
        el("td", { class: "num live-value", text: count(route.service_requests) }),
        el("td", { class: "num live-value", text: count(route.lost) }),
        el("td", { class: "live-value", text: reasons || (route.lost ? MISSING : "none") }),
        el("td", { class: "num live-value", text: count(route.extra_at_service) }),
        el("td", { class: "live-value", text: split }));
    });
    $("reconcile").tBodies[0].replaceChildren(...rows);
  }

  function renderAll() {
    if (!state.model) return;
    renderSource();
    renderWindows();
    renderGroupBy();
    renderConnection();
    renderBanners();
    renderHealth();
    renderChart();
    renderAnomalies();
    renderTable();
    renderRequestPanel();
    renderReconcile();
    if (!document.body.dataset.ready) {
      // From navigation to the first view with data: BENCHMARKS.md quotes it.
      performance.mark("vantage-drawn");
      document.body.dataset.ready = "true";
    }
  }

  // --- Live. ---

  function receive(doc, coarser) {
    if (state.by && !coarser) {
      // The stream carries the server's grouping: the coarser one is asked for at its pace.
      state.lastEvent = Date.now();
      fetchSummary(false);
      return;
    }
    state.model = fromSummary(doc);
    state.lastEvent = Date.now();
    if (state.downSince != null) state.downSince = null;
    renderAll();
  }

  function disconnected() {
    if (state.downSince == null) {
      state.downSince = Date.now() / 1000;
      renderConnection();
    }
  }

  function follow(retryMs) {
    const stream = new EventSource("api/stream");
    stream.addEventListener("summary", (event) => {
      retryMs = RETRY_MIN_MS;
      receive(JSON.parse(event.data));
    });
    stream.addEventListener("error", () => {
      disconnected();
      // The browser retries by itself unless it gave up (an answer that is not a stream).
      if (stream.readyState === EventSource.CLOSED) {
        setTimeout(() => follow(Math.min(retryMs * 2, RETRY_MAX_MS)), retryMs);
      }
    });
  }

  // `api/summary` once; `first` only paints if the stream has not painted yet.
  function fetchSummary(first) {
    const by = state.by;
    const url = by ? `api/summary?by=${encodeURIComponent(by.join(","))}` : "api/summary";
    fetch(url, { cache: "no-store" })
      .then((response) => (response.ok ? response.json() : Promise.reject(new Error(response.status))))
      .then((doc) => {
        // A grouping changed while this was asked: its own answer follows.
        if (state.by !== by) return;
        if (!first || state.model == null) receive(doc, by != null);
      })
      .catch(() => disconnected());
  }

  // The "Group by" checkboxes: one per dimension the server groups by (live only).
  function renderGroupBy() {
    const m = state.model;
    const box = $("group-by");
    const dims = m.groupableBy || [];
    box.hidden = !m.live || dims.length < 2;
    if (box.hidden || box.dataset.dims === dims.join(",")) return;
    box.dataset.dims = dims.join(",");
    box.replaceChildren(el("legend", { text: "Group by" }), ...dims.map((d) => {
      const input = el("input", { type: "checkbox", value: d });
      input.checked = true;
      input.addEventListener("change", regroup);
      return el("label", {}, input, ` ${d}`);
    }));
  }

  function regroup(event) {
    const inputs = [...$("group-by").querySelectorAll("input")];
    // At least one dimension: the last one cannot be unchecked.
    if (!inputs.some((input) => input.checked)) event.target.checked = true;
    const checked = inputs.filter((input) => input.checked).map((input) => input.value);
    state.by = checked.length === inputs.length ? null : checked;
    select(null);
    fetchSummary(false);
  }

  function live() {
    fetchSummary(true);
    follow(RETRY_MIN_MS);
    setInterval(() => {
      // Until the format is known the stream sends nothing: the summary says what is awaited.
      if (state.model && state.model.waiting) {
        fetchSummary(false);
      } else if (state.lastEvent && Date.now() - state.lastEvent > SILENCE_MS) {
        // A stream can stay open and yet bring nothing (a stuck proxy in between).
        disconnected();
      }
    }, 1000);
  }

  function start() {
    for (const id of ["filter-text", "filter-class", "filter-router"]) {
      $(id).addEventListener("input", () => {
        renderTable();
        renderRequestPanel();
      });
    }
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("chart-all").addEventListener("click", () => select(null));
    const embedded = $("vantage-data");
    if (embedded) {
      state.model = fromReport(JSON.parse(embedded.textContent));
      renderAll();
    } else {
      live();
    }
  }

  start();
})();
