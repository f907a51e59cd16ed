/* NASWeb dashboard: shared helpers and small page behaviours (tabs, confirmations, the
 * evaluator switch of the search form, live space progress, sparklines). No dependencies;
 * Plotly is used where a page loads it. Every page works without this file too. */
(function () {
  "use strict";

  const NASWeb = (window.NASWeb = {});
  const TERMINAL_SPACE = ["ready", "failed"];

  NASWeb.csrfToken = function () {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  };

  class HttpError extends Error {
    constructor(status, body) {
      const reasons = body && body.errors ? body.errors.map((e) => e.reason).join("; ") : "";
      super(reasons || `HTTP ${status}`);
      this.status = status;
      this.body = body;
    }
  }
  NASWeb.HttpError = HttpError;

  async function request(url, options) {
    const response = await fetch(url, Object.assign({ credentials: "same-origin" }, options));
    const type = response.headers.get("Content-Type") || "";
    const body = type.includes("json") ? await response.json() : await response.text();
    if (!response.ok) throw new HttpError(response.status, body);
    return body;
  }

  NASWeb.getJSON = (url) => request(url, { headers: { Accept: "application/json" } });
  NASWeb.getText = (url) => request(url, { headers: { Accept: "text/html, text/plain" } });
  NASWeb.postJSON = (url, payload) =>
    request(url, {
      method: "POST",
      headers: { Accept: "application/json", "Content-Type": "application/json", "X-CSRFToken": NASWeb.csrfToken() },
      body: JSON.stringify(payload || {}),
    });

  /* Call ``step`` every ``interval`` ms until it returns false; errors back off up to 10 s. */
  NASWeb.poll = function (step, interval) {
    let delay = interval;
    let stopped = false;
    async function tick() {
      if (stopped) return;
      let again = true;
      try {
        again = (await step()) !== false;
        delay = interval;
      } catch (error) {
        delay = Math.min(10000, delay * 2);
      }
      if (again && !stopped) window.setTimeout(tick, delay);
    }
    window.setTimeout(tick, 0);
    return { stop: () => (stopped = true) };
  };

  NASWeb.fmt = function (value, digits) {
    if (value === null || value === undefined || value === "") return "–";
    const number = Number(value);
    if (!Number.isFinite(number)) return String(value);
    if (Number.isInteger(number) && Math.abs(number) < 1e15) return number.toLocaleString("en-US");
    if (Math.abs(number) >= 10 ** (digits || 4) && Math.abs(number) < 1e15) return Math.round(number).toLocaleString("en-US");
    return String(Number(number.toPrecision(digits || 4)));
  };

  NASWeb.setBadge = function (element, state) {
    if (!element) return;
    element.className = element.className.replace(/\bstate-\S+/g, "").trim() + " state-" + state;
    element.textContent = state;
  };

  NASWeb.setBar = function (bar, fraction, state) {
    if (!bar) return;
    const percent = Math.max(0, Math.min(100, Math.round((fraction || 0) * 100)));
    bar.setAttribute("aria-valuenow", String(percent));
    bar.firstElementChild.style.width = percent + "%";
    bar.classList.toggle("done", state === "ready" || state === "finished");
    bar.classList.toggle("failed", state === "failed" || state === "cancelled");
  };

  NASWeb.readJSON = function (id) {
    const element = document.getElementById(id);
    return element ? JSON.parse(element.textContent) : null;
  };

  /* WebGL scatter for big point counts (a 10,000-evaluation search stays responsive). */
  NASWeb.scatterType = (n) => (n > 1500 ? "scattergl" : "scatter");

  /* An empty chart says so instead of drawing meaningless axes. */
  NASWeb.noValues = function (element, text) {
    if (!element) return;
    if (window.Plotly) window.Plotly.purge(element);
    element.replaceChildren(NASWeb.el("p", { class: "empty no-values", text: text || "No values yet." }));
  };

  NASWeb.plot = function (element, traces, layout) {
    if (!window.Plotly || !element) return;
    const empty = element.querySelector(":scope > .no-values");
    if (empty) empty.remove();
    // On a phone the mode bar (top right) would sit on the legend above the plot: it is left out there
    // (pinch-zoom and double-tap still work).
    const narrow = element.clientWidth > 0 && element.clientWidth < 640;
    const base = {
      margin: { l: 56, r: 16, t: 40, b: 48 },
      hovermode: "closest",
      legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom" },
      font: { family: "system-ui, sans-serif", size: 12 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#fff",
    };
    window.Plotly.react(element, traces, Object.assign(base, layout || {}), {
      responsive: true,
      displaylogo: false,
      displayModeBar: narrow ? false : "hover",
      modeBarButtonsToRemove: ["select2d", "lasso2d"],
    });
  };

  NASWeb.el = function (tag, attributes, children) {
    const element = document.createElement(tag);
    Object.entries(attributes || {}).forEach(([key, value]) => {
      if (key === "text") element.textContent = value;
      else if (key === "class") element.className = value;
      else element.setAttribute(key, value);
    });
    (children || []).forEach((child) => child && element.append(child));
    return element;
  };

  /* --- tabs (New space) ------------------------------------------------------------------- */
  function initTabs(list) {
    const tabs = Array.from(list.querySelectorAll("[role=tab]"));
    function select(tab, focus) {
      tabs.forEach((other) => {
        const selected = other === tab;
        other.setAttribute("aria-selected", String(selected));
        other.tabIndex = selected ? 0 : -1;
        document.getElementById(other.getAttribute("aria-controls")).hidden = !selected;
      });
      if (focus) tab.focus();
    }
    tabs.forEach((tab, position) => {
      tab.addEventListener("click", () => select(tab, false));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (step) select(tabs[(position + step + tabs.length) % tabs.length], true);
      });
    });
    select(tabs.find((tab) => tab.getAttribute("aria-selected") === "true") || tabs[0], false);
  }

  /* --- the search form shows the settings of the chosen evaluator only ---------------------- */
  function initEvaluatorSwitch(form) {
    const radios = Array.from(form.querySelectorAll("input[name=evaluator_kind]"));
    const groups = Array.from(form.querySelectorAll("[data-evaluator]"));
    function show() {
      const chosen = (radios.find((radio) => radio.checked) || {}).value;
      groups.forEach((group) => (group.hidden = group.dataset.evaluator !== chosen));
    }
    radios.forEach((radio) => radio.addEventListener("change", show));
    show();
  }

  /* --- live progress of spaces in a list ------------------------------------------------------ */
  function initLiveSpaces(items) {
    items.forEach((item) => {
      const id = item.dataset.liveSpace;
      NASWeb.poll(async () => {
        const space = await NASWeb.getJSON(`/api/spaces/${id}/`);
        const total = space.progress_total || 0;
        const fraction = space.state === "ready" ? 1 : total ? space.progress_done / total : 0;
        NASWeb.setBadge(item.querySelector(".badge"), space.state);
        NASWeb.setBar(item.querySelector(".bar"), fraction, space.state);
        const label = item.querySelector("[data-progress-label]");
        if (label) {
          label.textContent =
            space.state === "failed" ? "failed: " + (space.failure_reason || "") :
            space.state === "ready" ? "ready" : `${space.state} ${space.progress_done} / ${total}`;
        }
        return !TERMINAL_SPACE.includes(space.state);
      }, 2000);
    });
  }

  /* --- sparklines on the home page ------------------------------------------------------------ */
  function initSparklines(data) {
    document.querySelectorAll("[data-spark]").forEach((element) => {
      const line = data[element.dataset.spark];
      if (!line || !line.best.length) {
        element.append(NASWeb.el("span", { class: "muted", text: "no values yet" }));
        return;
      }
      NASWeb.plot(
        element,
        [{ x: line.evaluations, y: line.best, type: "scatter", mode: "lines", line: { shape: "hv", width: 2, color: "#2f5bd3" }, hoverinfo: "skip" }],
        {
          margin: { l: 2, r: 2, t: 2, b: 2 },
          xaxis: { visible: false, fixedrange: true },
          yaxis: { visible: false, fixedrange: true },
          showlegend: false,
          plot_bgcolor: "rgba(0,0,0,0)",
        },
      );
    });
  }

  /* --- New space: one type per encoding position, defaulting to what the engine infers ---------- */
  const POSITION_TYPES = ["infer", "categorical", "ordinal", "numeric", "log"];
  function initPositionTypes(box) {
    const form = box.closest("form");
    const file = form.querySelector("input[type=file][name$=encodings]");
    const text = form.querySelector("input[name$=position_types]");
    if (!file || !text) return;
    async function infer() {
      if (!file.files.length) return;
      const body = new FormData();
      body.append("encodings", file.files[0]);
      box.hidden = false;
      box.replaceChildren(NASWeb.el("p", { class: "muted", text: "Reading the positions…" }));
      try {
        const answer = await request(box.dataset.inferUrl, {
          method: "POST", body, headers: { Accept: "application/json", "X-CSRFToken": NASWeb.csrfToken() },
        });
        if (answer.errors) throw new Error(answer.errors.map((e) => e.reason).join("; "));
        const positions = answer.positions;
        const chosen = text.value.split(",").map((value) => value.trim());
        const selects = positions.map((position) => {
          const values = position.values ? position.values.slice(0, 6).map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ") +
            (position.n_values > 6 ? ", …" : "") : `${NASWeb.fmt(position.min)} … ${NASWeb.fmt(position.max)}`;
          const select = NASWeb.el("select", { id: `position-type-${position.position}`, "data-position": String(position.position) },
            POSITION_TYPES.map((kind) => NASWeb.el("option", { value: kind, text: kind === "infer" ? `infer (${position.type})` : kind })));
          if (positions.length === chosen.length && POSITION_TYPES.includes(chosen[position.position])) select.value = chosen[position.position];
          select.addEventListener("change", write);
          return NASWeb.el("div", { class: "position-type" }, [
            NASWeb.el("label", { for: select.id, text: `p${position.position}` }), select,
            NASWeb.el("span", { class: "muted", text: values }),
          ]);
        });
        box.replaceChildren(...selects);
        write();
      } catch (error) {
        box.replaceChildren(NASWeb.el("p", { class: "field-error", text: `could not read the positions: ${error.message}` }));
      }
    }
    function write() {
      const kinds = Array.from(box.querySelectorAll("select[data-position]")).map((select) => select.value);
      text.value = kinds.every((kind) => kind === "infer") ? "" : kinds.join(",");
    }
    file.addEventListener("change", infer);
  }

  function initConfirmations() {
    document.querySelectorAll("form[data-confirm]").forEach((form) => {
      form.addEventListener("submit", (event) => {
        if (!window.confirm(form.dataset.confirm)) event.preventDefault();
      });
    });
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("[data-tabs]").forEach(initTabs);
    const searchForm = document.getElementById("search-form");
    if (searchForm) initEvaluatorSwitch(searchForm);
    const live = document.querySelectorAll("[data-live-space]");
    if (live.length) initLiveSpaces(live);
    const sparklines = NASWeb.readJSON("sparklines");
    if (sparklines && window.Plotly) initSparklines(sparklines);
    initConfirmations();
    document.querySelectorAll("[data-infer-url]").forEach(initPositionTypes);
    // After a refused form, start where the problem is (the field and its error are next to each other).
    const invalid = document.querySelector("form [aria-invalid=true]");
    if (invalid) invalid.focus();
  });
})();
