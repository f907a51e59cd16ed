/* Comparison view: several searches' best high-fidelity curves and the exact expected
 * random-search curve of a tabular evaluator (from /api/searches/{id}/reference-curve/). */
(function () {
  "use strict";
  const N = window.NASWeb;
  const searches = N.readJSON("compare-data");
  const chart = document.getElementById("compare-chart");
  if (!searches || !chart || !window.Plotly) return;
  const COLOURS = ["#2f5bd3", "#c77c02", "#177245", "#8e3bb8", "#b42318", "#1d6fa5", "#6b7280", "#a16207"];
  const references = [];
  let xMode = "spent";

  function draw() {
    const traces = searches.map((search, position) => {
      const curve = search.curves.hi;
      return {
        name: search.name,
        type: N.scatterType(curve.best.length),
        mode: "lines",
        line: { shape: "hv", width: 2.5, color: COLOURS[position % COLOURS.length] },
        x: xMode === "spent" ? curve.spent : curve.evaluations,
        y: curve.best,
      };
    });
    references.forEach((reference) => {
      traces.push({
        name: reference.name, type: "scatter", mode: "lines", line: { dash: "dot", width: 2, color: "#374151" },
        x: reference.x, y: reference.y,
      });
    });
    N.plot(chart, traces, {
      xaxis: { title: { text: xMode === "spent" ? "budget spent (high-fidelity evaluations)" : "evaluations finished" },
        rangemode: "tozero" },
      yaxis: { title: { text: "best high-fidelity value" } },
    });
    chart.dataset.traces = String(traces.length);
  }

  async function loadReferences() {
    const status = document.getElementById("reference-status");
    const wanted = searches.filter((search) => search.reference);
    for (const search of wanted) {
      try {
        // {search, n_candidates, evaluations: [1..budget], best: [expected best after k draws]}
        const data = await N.getJSON(`/api/searches/${search.search}/reference-curve/`);
        references.push({ name: `random search, expected (${search.space})`, x: data.evaluations, y: data.best });
        draw();
      } catch (error) {
        if (status) status.textContent = `reference curve unavailable: ${error.message}`;
      }
    }
  }

  document.querySelectorAll("input[name=compare-x]").forEach((radio) => {
    radio.addEventListener("change", () => {
      xMode = radio.value;
      draw();
    });
  });
  draw();
  loadReferences();
})();
