// Datasets page: while a worker checks an upload, poll its API detail and reload once it is ready or failed
// (not while the user is filling in the upload form, which a reload would clear).
(function () {
  "use strict";
  const checking = Array.from(document.querySelectorAll('[data-dataset][data-state="validating"]'));
  if (!checking.length) return;
  const form = document.getElementById("dataset-form");
  function formTouched() {
    return Array.from(form.querySelectorAll("input[type=text], input[type=file]")).some((input) => input.value);
  }
  async function poll() {
    for (const item of checking) {
      try {
        const response = await fetch(`/api/datasets/${item.dataset.dataset}/`, {credentials: "same-origin"});
        if (response.ok && (await response.json()).state !== "validating" && !formTouched()) {
          window.location.reload();
          return;
        }
      } catch (error) {
        // a network hiccup: try again at the next round
      }
    }
    window.setTimeout(poll, 1500);
  }
  window.setTimeout(poll, 1000);
})();
