/* Search dashboard: the live best-value curve (polling /api/searches/{id}/progress/?cursor=),
 * budget and state, evaluations in flight, the Pareto plot and the server-paged evaluations table. */
(function () {
  "use strict";
  const N = window.NASWeb;
  const ACTIVE = ["queued", "running", "paused"];
  const POLL_MS = 1000;
  const initial = N.readJSON("curve-data");
  if (!initial) return;
  const searchId = initial.search;
  const api = `/api/searches/${searchId}`;
  /* an encoding as its user writes it: [3, 64, 5] or [nor_conv_3x3, skip_connect] (names unquoted) */
  const encodingText = (encoding) =>
    Array.isArray(encoding) ? `[${encoding.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ")}]` : "–";

  /* ---- best-value curve ------------------------------------------------------------------- */
  const minimize = initial.direction === "minimize";
  const better = minimize ? Math.min : Math.max;
  const betterWord = minimize ? "lower is better" : "higher is better";
  let startedAt = initial.started_at ? Date.parse(initial.started_at) : null;
  const series = {};
  ["hi", "lo"].forEach((fidelity) => {
    const curve = initial.curves[fidelity];
    series[fidelity] = {
      seq: curve.evaluations.slice(), spent: curve.spent.slice(), best: curve.best.slice(), value: curve.value.slice(),
      elapsed: (curve.elapsed_s || []).slice(),
    };
  });
  let lastSeq = initial.cursor || 0;
  let cursor = lastSeq;
  let xMode = "evaluations";
  let revision = 0;
  const chart = document.getElementById("curve-chart");
  const status = document.getElementById("curve-status");

  function addPoint(point) {
    if (point.seq <= lastSeq) return false;
    lastSeq = point.seq;
    if (point.state !== "done" || point.value === null) return false;
    const s = series[point.fidelity];
    const previous = s.best.length ? s.best[s.best.length - 1] : (minimize ? Infinity : -Infinity);
    const finished = point.finished_at ? Date.parse(point.finished_at) : Date.now();
    if (startedAt === null) startedAt = finished; // the search started since the page loaded
    s.seq.push(point.seq);
    s.spent.push(point.spent_after);
    s.value.push(point.value);
    s.best.push(better(previous, point.value));
    s.elapsed.push((finished - startedAt) / 1000);
    return true;
  }

  const X_TITLES = { evaluations: "evaluations finished", spent: "budget spent (high-fidelity evaluations)",
    elapsed: "wall clock (seconds since the search started)" };
  function drawCurve() {
    const x = (s) => (xMode === "spent" ? s.spent : xMode === "elapsed" ? s.elapsed : s.seq);
    const n = series.hi.seq.length + series.lo.seq.length;
    chart.dataset.points = String(n);
    if (!n) {
      N.noValues(chart, "No values yet: the curve starts with the first finished evaluation.");
      return;
    }
    const type = N.scatterType(n);
    const traces = [
      { name: "best, high fidelity", type, mode: "lines", line: { shape: "hv", width: 3, color: "#2f5bd3" },
        x: x(series.hi), y: series.hi.best },
      { name: "high-fidelity values", type, mode: "markers", marker: { size: n > 2000 ? 3 : 6, color: "#2f5bd3", opacity: 0.35 },
        x: x(series.hi), y: series.hi.value },
    ];
    if (series.lo.seq.length || initial.has_low_fidelity) {
      traces.push(
        { name: "best, low fidelity", type, mode: "lines", line: { shape: "hv", width: 2, dash: "dash", color: "#c77c02" },
          x: x(series.lo), y: series.lo.best },
        { name: "low-fidelity values", type, mode: "markers", marker: { size: n > 2000 ? 3 : 5, color: "#c77c02", opacity: 0.35, symbol: "diamond" },
          x: x(series.lo), y: series.lo.value },
      );
    }
    revision += 1;
    N.plot(chart, traces, {
      datarevision: revision, // the arrays grow in place; this tells Plotly.react to redraw them
      xaxis: { title: { text: X_TITLES[xMode] }, rangemode: "tozero" },
      yaxis: { title: { text: `value (${betterWord})` } },
    });
    chart.setAttribute("aria-label", `Best value so far against ${X_TITLES[xMode]}: ${n} points`);
  }

  document.querySelectorAll("input[name=curve-x]").forEach((radio) => {
    radio.addEventListener("change", () => {
      xMode = radio.value;
      drawCurve();
    });
  });

  /* ---- state, budget, actions --------------------------------------------------------------- */
  function showState(progress) {
    N.setBadge(document.getElementById("search-state"), progress.state);
    document.getElementById("best-value").textContent = N.fmt(progress.best_value);
    document.getElementById("best-index").textContent = progress.best_index === null ? "–" : String(progress.best_index);
    document.getElementById("best-encoding").textContent = encodingText(progress.best_encoding);
    document.getElementById("finished-count").textContent = String(progress.finished_count);
    document.getElementById("spent").textContent = N.fmt(progress.spent);
    document.getElementById("budget").textContent = N.fmt(progress.budget);
    N.setBar(document.getElementById("budget-bar"), progress.budget ? progress.spent / progress.budget : 0, progress.state);
    document.querySelectorAll("#search-actions [data-states], .steer [data-states]").forEach((form) => {
      form.hidden = !form.dataset.states.split(" ").includes(progress.state);
    });
    const failure = document.getElementById("search-failure");
    failure.hidden = progress.state !== "failed";
    failure.textContent = progress.failure_reason || "";
    status.textContent = ACTIVE.includes(progress.state) ? `live · ${progress.state}` : progress.state;
  }

  /* ---- evaluations in flight ---------------------------------------------------------------- */
  const inflight = document.getElementById("inflight");
  let runningLimit = null;
  /* a queued evaluation's place in the server's fair order (every user's work shares the workers) */
  function waitingText(item) {
    if (item.state !== "queued") return "";
    if (item.ahead === null) {
      return `waiting for one of your running evaluations to finish (at most ${runningLimit} run at once per user)`;
    }
    if (item.ahead === undefined) return "waiting for a worker";
    return item.ahead === 0 ? "waiting for a worker (next)" : `waiting for a worker (${item.ahead} ahead)`;
  }
  function showInFlight(items) {
    const rows = items.map((item) => {
      const head = N.el("div", { class: "row" }, [
        N.el("strong", { class: "encoding", text: encodingText(item.encoding) }),
        N.el("span", { class: "muted", text: `#${item.encoding_index}` }),
        N.el("span", { class: `fid-${item.fidelity}`, text: item.fidelity === "lo" ? "low fidelity" : "high fidelity" }),
        N.el("span", { class: `badge state-${item.state}`, text: item.state }),
        item.state === "queued" ? N.el("span", { class: "muted waiting", text: waitingText(item) }) : null,
        item.attempt > 1 ? N.el("span", { class: "muted", text: `attempt ${item.attempt}` }) : null,
        N.el("span", { class: "muted", text: item.state !== "running" ? "" : item.gpu && item.gpu !== "cpu" ? `GPU ${item.gpu}` : "CPU" }),
        item.predicted_mean !== null ? N.el("span", { class: "muted", text: `predicted ${N.fmt(item.predicted_mean, 3)} ± ${N.fmt(item.predicted_std, 2)}` }) : null,
      ]);
      const tail = (item.log_tail || "").slice(-1500);
      return N.el("li", { "data-inflight": String(item.id) }, [head, tail ? N.el("pre", { class: "log", text: tail }) : null]);
    });
    inflight.replaceChildren(...(rows.length ? rows : [N.el("li", { class: "empty", text: "Nothing is running." })]));
  }

  /* ---- evaluations table (server-rendered fragment) ----------------------------------------- */
  let tableQuery = (document.getElementById("evaluations-table") || {}).dataset?.query || "";
  let tableLoading = false;
  let tableStale = false;
  let lastTableRefresh = 0;

  async function loadTable(query, remember) {
    const holder = document.getElementById("evaluations-table");
    tableLoading = true;
    try {
      const html = await N.getText(`${holder.dataset.url}?${query}`);
      const template = document.createElement("template");
      template.innerHTML = html.trim();
      holder.replaceWith(template.content.firstElementChild);
      tableQuery = query;
      lastTableRefresh = Date.now();
      if (remember) history.replaceState(null, "", `${window.location.pathname}?${query}#evaluations`);
    } finally {
      tableLoading = false;
    }
  }

  /* Reload the table in place, unless a row is open (it would close under the reader's eyes):
   * then say that newer rows are waiting, and reload when the row is closed or on request. */
  function refreshTableSoon() {
    const open = document.querySelector("#evaluations-table button[aria-expanded=true]");
    staleNotice.hidden = !open;
    if (open || tableLoading || Date.now() - lastTableRefresh < 2000) return false;
    loadTable(tableQuery, false).catch(() => {});
    return true;
  }
  const staleNotice = N.el("p", { class: "stale", hidden: "", role: "status" }, [
    N.el("span", { text: "Newer evaluations are in. " }),
    N.el("button", { type: "button", class: "small secondary", "data-refresh-table": "", text: "Refresh the table" }),
  ]);
  document.getElementById("evaluations-title").after(staleNotice);

  const section = document.getElementById("evaluations");
  section.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-table-link]");
    if (link) {
      event.preventDefault();
      loadTable(new URL(link.href).search.slice(1), true).catch(() => (window.location.href = link.href));
      return;
    }
    if (event.target.closest("button[data-refresh-table]")) {
      staleNotice.hidden = true;
      tableStale = false;
      loadTable(tableQuery, false).catch(() => {});
      return;
    }
    const expand = event.target.closest("button[data-expand]");
    if (expand) toggleDetail(expand);
    const build = event.target.closest("button[data-build-network]");
    if (build) buildNetwork(build);
  });
  section.addEventListener("submit", (event) => {
    const form = event.target;
    if (form.id !== "evaluation-filters") return;
    event.preventDefault();
    const query = new URLSearchParams(new FormData(form));
    Array.from(query.keys()).forEach((key) => { if (!query.get(key)) query.delete(key); });
    loadTable(query.toString(), true).catch(() => form.submit());
  });

  async function toggleDetail(button) {
    const row = document.getElementById(button.getAttribute("aria-controls"));
    const open = button.getAttribute("aria-expanded") !== "true";
    button.setAttribute("aria-expanded", String(open));
    button.textContent = open ? "▾" : "▸";
    row.hidden = !open;
    if (!open && tableStale && !document.querySelector("#evaluations-table button[aria-expanded=true]")) {
      tableStale = false; // the last open row closed: show the newer rows now
      staleNotice.hidden = true;
      loadTable(tableQuery, false).catch(() => {});
    }
    if (!open || row.dataset.loaded) return;
    row.dataset.loaded = "1";
    const box = row.querySelector("[data-detail]");
    try {
      const detail = await N.getJSON(`${api}/evaluations/${box.dataset.detail}/`);
      box.querySelector("[data-part=encoding]").textContent = JSON.stringify(detail.encoding);
      box.querySelector("[data-part=log]").textContent = detail.log_tail || "(no log)";
    } catch (error) {
      box.querySelector("[data-part=encoding]").textContent = `could not load: ${error.message}`;
      box.querySelector("[data-part=log]").textContent = "";
    }
  }

  async function buildNetwork(button) {
    const holder = button.closest("[data-part=network]");
    const index = button.closest("[data-detail]").dataset.encodingIndex;
    const url = `/api/spaces/${initial.space}/networks/${index}/`;
    const out = N.el("pre", { class: "net", text: "building on a worker…" });
    holder.replaceChildren(out);
    try {
      let summary = await N.postJSON(url, {});
      for (let tries = 0; summary.state === "pending" && tries < 120; tries++) {
        await new Promise((resolve) => window.setTimeout(resolve, 1000));
        summary = await N.getJSON(url);
      }
      if (summary.state === "done") {
        out.textContent = `${N.fmt(summary.params)} parameters (${N.fmt(summary.params_test)} at test time)\n\n${summary.text}`;
      } else {
        out.textContent = summary.state === "failed" ? `could not build: ${summary.error}` : "still building; try again later";
      }
    } catch (error) {
      out.textContent = `could not build: ${error.message}`;
    }
  }

  /* ---- Pareto plot ---------------------------------------------------------------------------- */
  const paretoSelect = document.getElementById("pareto-metric");
  const paretoChart = document.getElementById("pareto-chart");
  let paretoAt = 0;
  async function drawPareto() {
    if (!paretoSelect || !paretoChart) return;
    paretoAt = Date.now();
    const metric = paretoSelect.value;
    const data = await N.getJSON(`${api}/pareto/?metric=${encodeURIComponent(metric)}`);
    const points = paretoPoints(data);
    paretoChart.dataset.points = String(points.length);
    if (!points.length) {
      N.noValues(paretoChart, "No values yet: points appear as high-fidelity evaluations finish.");
      return;
    }
    const front = points.filter((p) => p.front).sort((a, b) => a.x - b.x);
    const rest = points.filter((p) => !p.front);
    const label = (p) => `encoding ${p.index}`;
    N.plot(paretoChart, [
      { name: "evaluated", type: N.scatterType(rest.length), mode: "markers", x: rest.map((p) => p.x), y: rest.map((p) => p.y),
        text: rest.map(label), marker: { size: 6, color: "#9aa3b5" } },
      { name: "non-dominated", type: "scatter", mode: "lines+markers", x: front.map((p) => p.x), y: front.map((p) => p.y),
        text: front.map(label), line: { shape: "hv", color: "#b42318" }, marker: { size: 9, color: "#b42318" } },
    ], {
      xaxis: { title: { text: `${metric} (lower is better)` }, type: ["params", "flops", "params_test", "memory"].includes(metric) ? "log" : "linear" },
      yaxis: { title: { text: `value (${betterWord})` } },
    });
    paretoChart.dataset.front = String(front.length);
  }
  /* /api/searches/{id}/pareto/: {metric, points: [{index, value, metric_value, non_dominated}], unprofiled} */
  function paretoPoints(data) {
    return data.points.map((row) => ({ index: row.index, x: row.metric_value, y: row.value, front: row.non_dominated }));
  }
  if (paretoSelect) paretoSelect.addEventListener("change", () => drawPareto().catch(() => {}));

  /* ---- per-position views: parallel coordinates, importance, slices ---------------------------- */
  const parcoordsChart = document.getElementById("parcoords-chart");
  const importanceChart = document.getElementById("importance-chart");
  const sliceChart = document.getElementById("slice-chart");
  const sliceSelect = document.getElementById("slice-position");
  let positionsData = null;
  let positionsAt = 0;
  const levelText = (value) => (typeof value === "string" ? value : JSON.stringify(value));

  async function drawPositions() {
    if (!parcoordsChart) return;
    positionsAt = Date.now();
    positionsData = await N.getJSON(`${api}/positions/`);
    const { points, positions } = positionsData;
    parcoordsChart.dataset.points = String(points.length);
    if (sliceSelect && sliceSelect.options.length !== positions.length) {
      sliceSelect.replaceChildren(...positions.map((p) => N.el("option", { value: String(p.position), text: `p${p.position}` })));
    }
    if (!points.length) {
      [parcoordsChart, importanceChart, sliceChart].forEach((element) =>
        N.noValues(element, "No values yet: these views fill in as high-fidelity evaluations finish."));
      return;
    }
    const dimensions = positions.map((p) => {
      const label = `p${p.position}`;
      const column = points.map((point) => point.encoding[p.position]);
      if (p.kind === "numeric") return { label, values: column, range: [Math.min(...p.levels), Math.max(...p.levels)] };
      const codes = new Map(p.levels.map((level, k) => [level, k]));
      return { label, values: column.map((value) => codes.get(levelText(value))), tickvals: p.levels.map((_, k) => k),
        ticktext: p.levels, range: [0, Math.max(1, p.levels.length - 1)] };
    });
    const values = points.map((point) => point.value);
    dimensions.push({ label: "value", values });
    N.plot(parcoordsChart, [{
      type: "parcoords", dimensions,
      line: { color: values, colorscale: "Viridis", reversescale: minimize, showscale: true,
        colorbar: { title: { text: "value" }, thickness: 12 } },
    }], { margin: { l: 48, r: 64, t: 48, b: 24 } });
    parcoordsChart.dataset.dimensions = String(dimensions.length);
    N.plot(importanceChart, [{
      type: "bar", x: positions.map((p) => `p${p.position}`), y: positions.map((p) => p.importance),
      marker: { color: "#2f5bd3" }, hovertemplate: "%{x}: %{y:.0%} of the variance<extra></extra>",
    }], { yaxis: { title: { text: "share of variance" }, range: [0, 1], tickformat: ".0%" }, showlegend: false });
    importanceChart.dataset.positions = String(positions.length);
    drawSlice();
  }

  function drawSlice() {
    if (!positionsData || !positionsData.points.length || !sliceChart) return;
    const position = positionsData.positions[Number(sliceSelect.value || 0)];
    const points = positionsData.points;
    const numeric = position.kind === "numeric";
    const x = points.map((point) => (numeric ? point.encoding[position.position] : levelText(point.encoding[position.position])));
    const slices = position.slices.filter((slice) => slice.count > 0);
    N.plot(sliceChart, [
      { name: "evaluations", type: "scatter", mode: "markers", x, y: points.map((point) => point.value),
        text: points.map((point) => `encoding ${point.index}`), marker: { size: 6, color: "#9aa3b5" } },
      { name: "best per value", type: "scatter", mode: "lines+markers", x: slices.map((slice) => slice.level),
        y: slices.map((slice) => slice.best), line: { color: "#b42318" }, marker: { size: 8, color: "#b42318" } },
    ], {
      xaxis: { title: { text: `p${position.position}` }, type: numeric ? "linear" : "category",
        categoryorder: "array", categoryarray: position.levels },
      yaxis: { title: { text: `value (${betterWord})` } },
    });
    sliceChart.dataset.points = String(points.length);
  }
  if (sliceSelect) sliceSelect.addEventListener("change", drawSlice);

  /* Whether the table shows an evaluation in another state than the progress feed (queued vs running,
   * or still in flight when it has finished). */
  function tableDisagrees(inFlight) {
    const states = new Map(inFlight.map((item) => [String(item.id), item.state]));
    return Array.from(document.querySelectorAll("#evaluations-table tr[data-evaluation]")).some((row) => {
      const shown = ["queued", "running", "done", "failed"].find((state) => row.classList.contains(state));
      const now = states.get(row.dataset.evaluation);
      return now ? shown !== now : shown === "queued" || shown === "running";
    });
  }

  /* ---- the live loop ---------------------------------------------------------------------------- */
  let lastFinished = null;
  let lastSignature = null;
  let paretoStale = false;
  let positionsFinished = initial.cursor || 0;
  N.poll(async () => {
    const progress = await N.getJSON(`${api}/progress/?cursor=${cursor}`);
    let added = false;
    progress.finished.forEach((point) => { added = addPoint(point) || added; });
    cursor = progress.cursor;
    if (added) drawCurve();
    showState(progress);
    runningLimit = progress.running_limit;
    showInFlight(progress.in_flight);
    const signature = progress.finished_count + "|" + progress.in_flight.map((item) => item.id + item.state).join(",");
    if (lastSignature !== null && signature !== lastSignature) tableStale = true;
    if (tableDisagrees(progress.in_flight)) tableStale = true; // e.g. it changed between page render and first poll
    if (lastFinished !== null && progress.finished_count !== lastFinished) paretoStale = true;
    lastSignature = signature;
    lastFinished = progress.finished_count;
    if (tableStale && refreshTableSoon()) tableStale = false;
    if (paretoStale && Date.now() - paretoAt > 3000) {
      paretoStale = false;
      drawPareto().catch(() => {});
    }
    if (lastFinished !== null && progress.finished_count !== positionsFinished && Date.now() - positionsAt > 5000) {
      positionsFinished = progress.finished_count;
      drawPositions().catch(() => {});
    }
    if (progress.more) return true;
    const tableWaits = tableStale && staleNotice.hidden; // held back only by the 2 s throttle
    return ACTIVE.includes(progress.state) || progress.in_flight.length > 0 || paretoStale || tableWaits;
  }, POLL_MS);

  drawCurve();
  drawPareto().catch(() => {});
  drawPositions().catch(() => {});
})();
