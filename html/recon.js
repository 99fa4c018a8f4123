// Technicians' reconstruction page: pick a projection series, run it again with other
// parameters, and compare the runs' QC. Everything goes through our REST API with the
// sign-in cookies (hounsfieldSession.api); words in the reader's language (i18n.js).
(function () {
  "use strict";
  const seriesSelect = document.getElementById("series");
  const seriesInfo = document.getElementById("series-info");
  const form = document.getElementById("run-form");
  const message = document.getElementById("message");
  const rows = document.querySelector("#runs tbody");
  const api = window.hounsfieldSession.api;
  const { t } = window.hounsfieldI18n;
  let polling = null;

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text === undefined || text === null ? "" : String(text);
    if (className) td.className = className;
    return td;
  }

  function describe(params) {
    const method = params.method || "fdk";
    const parts = [method.toUpperCase()];
    if (method === "fdk") parts.push(t("recon.describe.hann", { value: params.hann_cut ?? 1 }));
    if (params.iterations) parts.push(t("recon.describe.iterations", { count: params.iterations }));
    if (method === "tv") parts.push(t("recon.describe.strength", { value: params.tv_strength ?? 4 }));
    if (params.preview) parts.push(t("recon.describe.preview"));
    return parts.join(" ");
  }

  function stateOf(run) {
    const state = t("job." + run.state, { progress: run.progress });
    return run.state === "failed" ? state + ": " + run.error : state;
  }

  function render(runs) {
    rows.replaceChildren(
      ...runs.map(function (run) {
        const result = run.result || {};
        const qc = result.qc || {};
        const tr = document.createElement("tr");
        tr.className = run.state;
        tr.append(
          cell(run.id),
          cell(stateOf(run)),
          cell(describe(run.params)),
          cell(result.grid ? result.grid.size.join("×") : ""),
          cell(result.reconstructionSeconds, "number"),
          cell(result.device),
          cell(qc.centreMeanHu, "number"),
          cell(qc.noiseHu, "number"),
          cell(qc.uniformityHu, "number"),
          cell(qc.ringIndexHu, "number"),
        );
        const open = document.createElement("td");
        if (result.viewer) {
          const link = document.createElement("a");
          link.href = result.viewer;
          link.target = "_blank";
          link.textContent = t("recon.open");
          open.append(link);
        }
        tr.append(open);
        return tr;
      }),
    );
  }

  function showVerdict(series) {
    const runButton = document.getElementById("run");
    const blocked = Boolean(series && !series.reconstructable);
    runButton.disabled = blocked;
    seriesInfo.textContent = blocked ? t("recon.not_reconstructable", { reason: series.reason }) : "";
    seriesInfo.classList.toggle("problem", blocked);
  }

  async function loadRuns() {
    if (!seriesSelect.value) return;
    const listing = await api("/api/reconstructions?series=" + encodeURIComponent(seriesSelect.value));
    showVerdict(listing.series);
    render(listing.reconstructions);
    const busy = listing.reconstructions.some((run) => run.state === "queued" || run.state === "running");
    clearTimeout(polling);
    polling = busy ? setTimeout(loadRuns, 1500) : null;
  }

  async function loadSeries() {
    const listing = await api("/api/projections?limit=1000");
    const asked = new URLSearchParams(window.location.search);
    // ?series= one series; ?study= (Orthanc Explorer's "Reconstruct") that study's first.
    const ofStudy = listing.projections.find((series) => series.study === asked.get("study"));
    const wanted = asked.get("series") || (ofStudy && ofStudy.id);
    if (asked.has("study") && !wanted) {
      seriesInfo.textContent = t("recon.no_series_in_study");
      return;
    }
    for (const series of listing.projections) {
      const option = document.createElement("option");
      option.value = series.id;
      option.textContent = [
        series.description || t("recon.projections"),
        series.modality,
        t("recon.frames", { count: series.frames }),
        series.reconstructable ? "" : t("recon.cannot_reconstruct"),
        series.id,
      ].filter(Boolean).join(" · ");
      seriesSelect.append(option);
    }
    if (wanted && !listing.projections.some((series) => series.id === wanted)) {
      const option = document.createElement("option");
      option.value = option.textContent = wanted;
      seriesSelect.append(option);
    }
    if (wanted) seriesSelect.value = wanted;
    if (!seriesSelect.value) {
      seriesInfo.textContent = t("recon.no_series");
      return;
    }
    await loadRuns();
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    show("");
    const body = { series: seriesSelect.value, method: form.method.value, preview: form.preview.checked };
    for (const name of ["hann_cut", "iterations", "tv_strength", "voxels"]) {
      if (form[name].value !== "") body[name] = Number(form[name].value);
    }
    const button = document.getElementById("run");
    button.disabled = true;
    try {
      await api("/api/reconstructions", { method: "POST", json: body });
      await loadRuns();
    } catch (error) {
      show(error.message);
    } finally {
      button.disabled = false;
    }
  });

  seriesSelect.addEventListener("change", loadRuns);
  document.getElementById("sign-out").addEventListener("click", window.hounsfieldSession.signOut);
  window.hounsfieldSession.start();
  window.hounsfieldI18n.ready.then(function () {
    window.hounsfieldI18n.menu(document.getElementById("language"));
    return loadSeries();
  }).catch((error) => show(error.message));
})();
