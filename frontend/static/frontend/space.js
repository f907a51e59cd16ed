/* Space detail: live pipeline progress, profiled-metric scatter, surrogate quality. */
(function () {
  "use strict";
  const N = window.NASWeb;
  const ORDER = ["validating", "profiling", "pretraining", "ready"];
  const LOG_METRICS = ["params", "params_test", "flops", "memory"];

  function initProgress(card) {
    if (card.dataset.live !== "true") return;
    const id = card.dataset.space;
    const label = document.getElementById("space-progress-label");
    N.poll(async () => {
      const space = await N.getJSON(`/api/spaces/${id}/`);
      if (space.state === "ready" || space.state === "failed") {
        window.location.reload(); // the server renders the plots, the bundle link and the failure
        return false;
      }
      const total = space.progress_total || 0;
      N.setBadge(document.getElementById("space-state"), space.state);
      N.setBar(document.getElementById("space-bar"), total ? space.progress_done / total : 0, space.state);
      label.textContent = `${space.state.charAt(0).toUpperCase() + space.state.slice(1)}: ${space.progress_done} / ${total}`;
      const now = ORDER.indexOf(space.state);
      card.querySelectorAll("[data-step]").forEach((step) => {
        const position = ORDER.indexOf(step.dataset.step);
        step.className = position < now ? "done" : position === now ? "current" : "pending";
        if (position === now) step.setAttribute("aria-current", "step");
        else step.removeAttribute("aria-current");
      });
      return true;
    }, 1000);
  }

  function initProfile(data) {
    const metrics = Object.keys(data.metrics);
    const chart = document.getElementById("profile-chart");
    const selects = {
      x: document.getElementById("profile-x"),
      y: document.getElementById("profile-y"),
      colour: document.getElementById("profile-colour"),
    };
    const prefer = {
      x: metrics.includes("params") ? "params" : metrics[0],
      y: metrics.includes("flops") ? "flops" : metrics[1] || metrics[0],
      colour: metrics.includes("latency") ? "latency" : metrics[metrics.length - 1],
    };
    Object.entries(selects).forEach(([axis, select]) => {
      metrics.forEach((metric) => select.append(new Option(metric, metric, false, metric === prefer[axis])));
      select.addEventListener("change", draw);
    });
    const logBox = document.getElementById("profile-log");
    logBox.addEventListener("change", draw);

    function draw() {
      const x = selects.x.value, y = selects.y.value, colour = selects.colour.value;
      const log = (metric) => (logBox.checked && LOG_METRICS.includes(metric) ? "log" : "linear");
      const text = data.indices.map((index) => `encoding ${index}`);
      N.plot(chart, [{
        type: N.scatterType(data.indices.length),
        mode: "markers",
        x: data.metrics[x],
        y: data.metrics[y],
        text: text,
        marker: {
          size: data.indices.length > 2000 ? 4 : 7,
          color: data.metrics[colour],
          colorscale: "Viridis",
          showscale: true,
          colorbar: { title: { text: colour }, thickness: 12 },
        },
        hovertemplate: `%{text}<br>${x} %{x}<br>${y} %{y}<br>${colour} %{marker.color}<extra></extra>`,
      }], {
        xaxis: { title: { text: x }, type: log(x) },
        yaxis: { title: { text: y }, type: log(y) },
        showlegend: false,
      });
      chart.setAttribute("aria-label", `Scatter plot of ${y} against ${x}, coloured by ${colour}`);
    }
    draw();
  }

  function initQuality(quality) {
    const select = document.getElementById("quality-metric");
    const chart = document.getElementById("quality-chart");
    function draw() {
      const metric = select.value;
      const entry = quality[metric];
      const all = entry.measured.concat(entry.predicted).filter(Number.isFinite);
      const low = Math.min(...all), high = Math.max(...all);
      // counts spanning decades (params, FLOPs, memory) are read on a log axis, as in the profile plot
      const type = LOG_METRICS.includes(metric) && low > 0 ? "log" : "linear";
      N.plot(chart, [
        { type: "scatter", mode: "markers", name: "held-out candidates", x: entry.measured, y: entry.predicted,
          marker: { size: 6, color: "#2f5bd3", opacity: 0.7 } },
        { type: "scatter", mode: "lines", name: "perfect prediction", x: [low, high], y: [low, high],
          line: { dash: "dot", color: "#9aa3b5" }, hoverinfo: "skip" },
      ], {
        xaxis: { title: { text: `measured ${metric}` }, type },
        yaxis: { title: { text: `predicted ${metric}` }, type },
        annotations: [{ xref: "paper", yref: "paper", x: 0.02, y: 0.98, showarrow: false, align: "left",
          text: `Kendall τ = ${N.fmt(entry.tau, 3)} (n = ${entry.n})`, bgcolor: "rgba(255,255,255,.8)" }],
      });
    }
    select.addEventListener("change", draw);
    draw();
  }

  const card = document.getElementById("space-progress");
  if (card) initProgress(card);
  const profile = N.readJSON("profile-data");
  if (profile && window.Plotly && Object.keys(profile.metrics).length) initProfile(profile);
  const quality = N.readJSON("quality-data");
  if (quality && window.Plotly && Object.keys(quality).length) initQuality(quality);
})();
