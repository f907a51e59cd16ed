/* Comparison view: several searches' best high-fidelity curves with random-search references, as raw
 * values, as regret against the best value known on each space, or as the top fraction of the space reached
 * (rank), which puts searches on different spaces on one scale. The exact expected random-search value curve
 * of a tabular evaluator comes from /api/searches/{id}/reference-curve/; the rank reference needs only the
 * space's size N: the expected best rank of k uniform draws without replacement is (N+1)/(k+1). */
(function () {
  "use strict";
  const N = window.NASWeb;
  const searches = N.readJSON("compare-data");
  const tables = N.readJSON("compare-tables") || {};
  const chart = document.getElementById("compare-chart");
  if (!searches || !chart || !window.Plotly) return;
  const COLOURS = ["#2f5bd3", "#c77c02", "#177245", "#8e3bb8", "#b42318", "#1d6fa5", "#6b7280", "#a16207"];
  const valueReferences = [];
  let xMode = "spent";
  let yMode = "value";

  /* up is better in the regret and rank views: a minimised search's values are negated there */
  const sign = (search) => (search.direction === "minimize" ? -1 : 1);

  /* per space: ascending "higher is better" values known there (its table, else every value measured) */
  const known = {};
  searches.forEach((search) => {
    const space = String(search.space_id);
    if (tables[space] && tables[space].length) {
      known[space] = { values: tables[space].map((v) => sign(search) * v).sort((a, b) => a - b), exact: true };
    }
  });
  searches.forEach((search) => {
    const space = String(search.space_id);
    if (known[space] && known[space].exact) return;
    const entry = (known[space] = known[space] || { values: [], exact: false });
    search.curves.hi.value.forEach((v) => entry.values.push(sign(search) * v));
  });
  Object.values(known).forEach((entry) => entry.values.sort((a, b) => a - b));

  /* how many known values are at least ``v`` (binary search in the ascending list) */
  function atLeast(values, v) {
    let low = 0;
    let high = values.length;
    while (low < high) {
      const mid = (low + high) >> 1;
      if (values[mid] < v) low = mid + 1;
      else high = mid;
    }
    return values.length - low;
  }

  function transform(search, best) {
    const entry = known[String(search.space_id)];
    const up = best.map((v) => sign(search) * v);
    if (yMode === "regret") {
      const top = entry && entry.values.length ? entry.values[entry.values.length - 1] : Math.max(...up);
      return up.map((v) => top - v);
    }
    if (yMode === "rank") {
      const n = entry && entry.exact ? entry.values.length : search.n_candidates;
      return up.map((v) => Math.max(1, entry ? atLeast(entry.values, v) : 1) / n);
    }
    return best;
  }

  function rankReference(n, k) {
    return ((n + 1) / (k + 1)) / n;
  }

  function references() {
    if (yMode === "value") return valueReferences;
    const out = [];
    const seen = new Set();
    searches.forEach((search) => {
      const n = search.n_candidates;
      const budget = Math.max(1, Math.min(1000, Math.ceil(search.budget)));
      const ks = Array.from({ length: budget }, (_, i) => i + 1);
      if (yMode === "rank" && !seen.has(`n${n}`)) {
        seen.add(`n${n}`);
        out.push({ name: `random search, expected (N = ${N.fmt(n)})`, x: ks, y: ks.map((k) => rankReference(n, k)) });
      }
      if (yMode === "regret" && search.reference && !seen.has(`s${search.space_id}`)) {
        seen.add(`s${search.space_id}`);
        const reference = valueReferences.find((r) => r.space_id === search.space_id);
        const entry = known[String(search.space_id)];
        if (reference && entry && entry.exact) {
          const top = entry.values[entry.values.length - 1];
          out.push({ name: reference.name, x: reference.x, y: reference.y.map((v) => top - sign(search) * v) });
        }
      }
    });
    return out;
  }

  const Y_TITLES = { value: "best high-fidelity value", regret: "regret (best known − best so far)",
    rank: "top fraction of the space reached (log)" };

  function draw() {
    const traces = searches.map((search, position) => {
      const curve = search.curves.hi;
      return {
        name: search.name,
        type: N.scatterType(curve.best.length),
        mode: "lines",
        line: { shape: "hv", width: 2.5, color: COLOURS[position % COLOURS.length] },
        x: xMode === "spent" ? curve.spent : curve.evaluations,
        y: transform(search, curve.best),
      };
    });
    references().forEach((reference) => {
      traces.push({
        name: reference.name, type: "scatter", mode: "lines", line: { dash: "dot", width: 2, color: "#374151" },
        x: reference.x, y: reference.y,
      });
    });
    if (!searches.some((search) => search.curves.hi.best.length)) {
      N.noValues(chart, "No values yet: none of these searches has a finished high-fidelity evaluation.");
      chart.dataset.traces = "0";
      return;
    }
    N.plot(chart, traces, {
      xaxis: { title: { text: xMode === "spent" ? "budget spent (high-fidelity evaluations)" : "evaluations finished" },
        rangemode: "tozero" },
      yaxis: { title: { text: Y_TITLES[yMode] }, type: yMode === "rank" ? "log" : "linear" },
    });
    chart.dataset.traces = String(traces.length);
    chart.dataset.mode = yMode;
  }

  async function loadReferences() {
    const status = document.getElementById("reference-status");
    const wanted = searches.filter((search) => search.reference);
    for (const search of wanted) {
      try {
        // {search, n_candidates, evaluations: [1..budget], best: [expected best after k draws]}
        const data = await N.getJSON(`/api/searches/${search.search}/reference-curve/`);
        valueReferences.push({ name: `random search, expected (${search.space})`, space_id: search.space_id,
          x: data.evaluations, y: data.best });
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
  document.querySelectorAll("input[name=compare-y]").forEach((radio) => {
    radio.addEventListener("change", () => {
      yMode = radio.value;
      draw();
    });
  });
  draw();
  loadReferences();
})();
