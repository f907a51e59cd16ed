/* Search dashboard, several objectives: the live hypervolume curve and the Pareto front as it grows
 * (polling /api/searches/{id}/hypervolume/ while the search is active). */
(function () {
  "use strict";
  const N = window.NASWeb;
  const box = document.getElementById("hardware");
  if (!box) return;
  const api = `/api/searches/${box.dataset.search}/hypervolume/`;
  const hvChart = document.getElementById("hv-chart");
  const frontChart = document.getElementById("front-chart");
  const POLL_MS = 2000;
  let seen = -1;

  function draw(data) {
    const names = data.objectives.map((o) => o[0]);
    const dirs = data.objectives.map((o) => o[1]);
    document.getElementById("hv-reference").textContent =
      names.map((n) => `${n} = ${Number(data.reference[n]).toPrecision(4)}`).join(", ");
    hvChart.dataset.points = String(data.hypervolume.length);
    frontChart.dataset.front = String(data.front.length);
    if (!data.hypervolume.length) {
      N.noValues(hvChart, "No results yet: the hypervolume grows as high-fidelity evaluations finish.");
      return;
    }
    N.plot(hvChart, [{ name: "hypervolume", type: "scatter", mode: "lines", x: data.evaluation, y: data.hypervolume,
      line: { shape: "hv", color: "#1d4ed8" } }], {
      xaxis: { title: { text: "evaluations" } }, yaxis: { title: { text: "dominated hypervolume" } },
    });
    const x = names.length > 1 ? names[1] : names[0];
    const y = names[0];
    const label = (p) => `encoding ${p.index} (evaluation ${p.evaluation})`;
    const rest = data.points.filter((p) => !data.front.some((f) => f.evaluation === p.evaluation));
    const front = data.front.slice().sort((a, b) => a[x] - b[x]);
    N.plot(frontChart, [
      { name: "feasible", type: N.scatterType(rest.length), mode: "markers", x: rest.filter((p) => p.feasible).map((p) => p[x]),
        y: rest.filter((p) => p.feasible).map((p) => p[y]), text: rest.filter((p) => p.feasible).map(label),
        marker: { size: 6, color: "#9aa3b5" } },
      { name: "infeasible", type: N.scatterType(rest.length), mode: "markers", x: rest.filter((p) => !p.feasible).map((p) => p[x]),
        y: rest.filter((p) => !p.feasible).map((p) => p[y]), text: rest.filter((p) => !p.feasible).map(label),
        marker: { size: 6, symbol: "x", color: "#d97706" } },
      { name: "front so far", type: "scatter", mode: "lines+markers", x: front.map((p) => p[x]), y: front.map((p) => p[y]),
        text: front.map(label), line: { shape: "hv", color: "#b42318" }, marker: { size: 9, color: "#b42318" } },
    ], {
      xaxis: { title: { text: `${x} (${dirs[names.indexOf(x)]})` } },
      yaxis: { title: { text: `${y} (${dirs[0]})` } },
    });
  }

  async function poll() {
    try {
      const data = await N.getJSON(api);
      if (data.hypervolume.length !== seen) {
        seen = data.hypervolume.length;
        draw(data);
      }
    } catch (error) {
      /* a failed poll is retried on the next tick */
    }
    if (box.dataset.active) window.setTimeout(poll, POLL_MS);
  }
  poll();
})();
