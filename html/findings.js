// The reading page's AI findings panel (served by the hounsfield.ai extension at
// /ai/findings.js; without it the script is absent and the panel keeps its "none" text).
//
// GET /api/studies/{id}/findings lists what the analyses found, most severe first; a
// critical finding nobody has reviewed yet is flagged in words, not only in colour. A
// reader (admin, radiologist) confirms, rejects or corrects each (POST
// /api/findings/{id}/review); "Show" opens the viewer at the finding's slice, "Insert into
// report" appends a confirmed finding to the report's Findings section (an ``input``
// event lets the report page save it as if typed). Staff may run the analyses again
// (POST /api/studies/{id}/analyze) and watch their jobs. Whatever a finding says is only
// ever set as ``textContent`` or ``value``: shown as written, never run.
(function () {
  "use strict";
  const { t, dateTime } = window.hounsfieldI18n;
  const reading = window.hounsfieldReading;
  const { api, me } = window.hounsfieldSession;
  const STAFF = ["admin", "radiologist", "technician"];
  const SEVERITIES = ["critical", "moderate", "minor", "normal"]; // most severe first
  const CHANGEABLE = ["category", "description", "severity", "size_mm", "volume_ml"];
  const POLL_MS = 1000;
  // UCUM units as a reader writes them ("1": a count, no unit).
  const UNITS = { 1: "", "[hnsf'U]": "HU", "{ratio}": "" };
  const MEASURED = /\d\s*(mm|ml|cm|cm3|mm3)\b/i; // a description that gives a size already
  const studyId = new URLSearchParams(window.location.search).get("id") || "";
  const byId = (id) => document.getElementById(id);
  const panel = byId("ai-findings").closest("section");

  let user = null;
  let findings = []; // as the API gave them
  let analyses = [];
  let studyUid = null; // for the viewer
  const seriesInfo = new Map(); // Orthanc series id -> {uid, number, description}
  const imageNumbers = new Map(); // SOPInstanceUID -> InstanceNumber
  let editing = null; // the finding whose correction form is open
  const revising = new Set(); // reviewed findings whose decision buttons are shown again
  let busy = false; // an analysis under way

  // -- words and numbers ---------------------------------------------------------------

  function number(value, digits) {
    const format = new Intl.NumberFormat(window.hounsfieldI18n.language, {
      maximumFractionDigits: digits,
    });
    return format.format(value);
  }

  // A word the catalogue may have (a category, a measurement), else the text as given.
  function known(key, fallback) {
    const word = t(key);
    return word === key ? fallback : word;
  }

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) {
      node.className = className;
    }
    if (text !== undefined && text !== null) {
      node.textContent = text;
    }
    return node;
  }

  function button(key, action, className) {
    const node = element("button", className || "small", t(key));
    node.type = "button";
    node.dataset.action = action;
    return node;
  }

  function message(text) {
    byId("ai-message").textContent = text;
    byId("ai-message").hidden = !text;
  }

  function progress(text) {
    byId("ai-progress").textContent = text;
    byId("ai-progress").hidden = !text;
  }

  // -- what a finding says now ---------------------------------------------------------

  // The finding as its reviewer left it: a correction ("modified") overrides what the
  // analysis said.
  function current(finding) {
    const review = finding.review;
    const changes = review && review.decision === "modified" ? review.changes || {} : {};
    const shown = { ...finding };
    for (const field of CHANGEABLE) {
      if (changes[field] !== undefined && changes[field] !== null) {
        shown[field] = changes[field];
      }
    }
    return shown;
  }

  const rejected = (finding) => Boolean(finding.review && finding.review.decision === "rejected");
  const flagged = (finding) => !finding.review && finding.severity === "critical";
  const accepted = (finding) =>
    Boolean(finding.review && finding.review.decision !== "rejected");

  // Most severe first (as corrected), rejected findings last; the API's order otherwise.
  function ordered() {
    const rank = (finding) =>
      (rejected(finding) ? SEVERITIES.length : 0) + SEVERITIES.indexOf(current(finding).severity);
    return findings
      .map((finding, index) => ({ finding, index }))
      .sort((a, b) => rank(a.finding) - rank(b.finding) || a.index - b.index)
      .map((item) => item.finding);
  }

  function sizes(finding) {
    const parts = [];
    if (finding.size_mm !== null && finding.size_mm !== undefined) {
      parts.push(t("ai.size", { size: number(finding.size_mm, 1) }));
    }
    if (finding.volume_ml !== null && finding.volume_ml !== undefined) {
      parts.push(t("ai.volume", { volume: number(finding.volume_ml, 2) }));
    }
    return parts;
  }

  // "series 2, image 21" (as far as known).
  function place(finding) {
    const location = finding.location || {};
    const series = seriesInfo.get(location.series);
    const image = location.instance ? imageNumbers.get(location.instance) : undefined;
    if (series && series.number && image !== undefined) {
      return t("ai.place_image", { series: series.number, image: image });
    }
    if (series && series.number) {
      return t("ai.place_series", { series: series.number });
    }
    return "";
  }

  // The line "Insert into report" adds: "Description (12 mm / 0.9 ml), series 2, image 21."
  // The size is left out where the description already gives it (analyzers often write
  // it there), unless a reviewer corrected the size and not the description.
  function reportLine(finding) {
    const shown = current(finding);
    const measured = sizes(shown);
    const changes = (finding.review && finding.review.changes) || {};
    const resized = ("size_mm" in changes || "volume_ml" in changes) && !changes.description;
    let line = shown.description || shown.category;
    if (measured.length && (resized || !MEASURED.test(line))) {
      line += " (" + measured.join(" / ") + ")";
    }
    const where = place(finding);
    if (where) {
      line += ", " + where;
    }
    return /[.!?]$/.test(line) ? line : line + ".";
  }

  // -- the report's Findings section ---------------------------------------------------

  function reportBox() {
    return document.querySelector('#sections textarea[name="findings"]');
  }

  function reportWritable() {
    const box = reportBox();
    return Boolean(box && !box.readOnly && !box.disabled);
  }

  function insert(finding) {
    const box = reportBox();
    if (!box || box.readOnly) {
      return;
    }
    const text = box.value.replace(/\s+$/, "");
    box.value = (text ? text + "\n" : "") + reportLine(finding);
    box.dispatchEvent(new Event("input", { bubbles: true })); // the report page saves it
    progress(t("ai.inserted"));
  }

  // The report turns read-only or writable as the study is claimed, released, signed: the
  // insert buttons follow.
  function followReport() {
    const writable = reportWritable();
    for (const node of panel.querySelectorAll('button[data-action="insert"]')) {
      node.disabled = !writable;
      node.title = writable ? "" : t("ai.insert_read_only");
    }
  }

  // -- the viewer ------------------------------------------------------------------------

  function viewerUrl(finding) {
    const location = finding.location || {};
    let url = reading.viewer(studyUid);
    const series = seriesInfo.get(location.series);
    if (series && series.uid) {
      url += "&initialSeriesInstanceUID=" + encodeURIComponent(series.uid);
    }
    if (location.instance) {
      url += "&initialSOPInstanceUID=" + encodeURIComponent(location.instance);
    }
    return url;
  }

  // -- rendering ---------------------------------------------------------------------------

  function reviewState(finding) {
    const review = finding.review;
    const state = element("p", "review-state");
    if (!review) {
      state.textContent = t("ai.review.none");
      state.classList.add("pending");
      return state;
    }
    state.classList.add(review.decision);
    state.textContent = t("ai.review." + review.decision, {
      by: review.by,
      time: dateTime(review.at, "short"),
    });
    if (review.notes) {
      state.append(element("span", "notes", t("ai.notes_said", { notes: review.notes })));
    }
    return state;
  }

  function correctionForm(finding) {
    const shown = current(finding);
    const form = element("form", "correction");
    form.dataset.finding = finding.id;
    const field = (key, control) => {
      const label = element("label");
      label.append(element("span", null, t(key)), control);
      form.append(label);
      return control;
    };
    const description = field("ai.field.description", element("textarea"));
    description.name = "description";
    description.rows = 3;
    description.maxLength = 1000;
    description.required = true;
    description.value = shown.description || "";
    const severity = field("ai.field.severity", element("select"));
    severity.name = "severity";
    for (const level of SEVERITIES) {
      const label = t("ai.severity." + level);
      severity.append(new Option(label, level, false, level === shown.severity));
    }
    const size = field("ai.field.size", element("input"));
    size.name = "size_mm";
    size.type = "number";
    size.min = "0";
    size.max = "10000";
    size.step = "0.1";
    size.value = shown.size_mm === null || shown.size_mm === undefined ? "" : shown.size_mm;
    const notes = field("ai.field.notes", element("textarea"));
    notes.name = "notes";
    notes.rows = 2;
    notes.maxLength = 4000;
    const buttons = element("div", "finding-buttons");
    const save = button("ai.save_correction", "save");
    save.type = "submit";
    buttons.append(save, button("ai.cancel", "cancel", "small quiet"));
    form.append(buttons);
    return form;
  }

  function findingItem(finding) {
    const shown = current(finding);
    const item = element("li", "finding severity-" + shown.severity);
    item.dataset.finding = finding.id;
    if (rejected(finding)) {
      item.classList.add("rejected");
    }
    const head = element("div", "finding-head");
    const badge = element("span", "badge severity " + shown.severity);
    badge.textContent = t("ai.severity." + shown.severity);
    head.append(badge);
    if (flagged(finding)) {
      item.classList.add("flagged");
      const flag = element("span", "badge flag");
      flag.append(element("span", "icon", "⚑"), " ", t("ai.needs_review"));
      flag.firstChild.setAttribute("aria-hidden", "true");
      head.append(flag);
    }
    const location = finding.location || {};
    if (location.instance || (location.series && finding.severity !== "normal")) {
      const show = button("ai.show", "show", "small quiet show"); // the viewer, at its slice
      show.disabled = !studyUid;
      head.append(show);
    }
    item.append(head, element("p", "description", shown.description || shown.category));
    const details = sizes(shown);
    if (finding.confidence !== null && finding.confidence !== undefined) {
      details.push(t("ai.confidence", { percent: number(finding.confidence * 100, 0) }));
    }
    const where = place(finding);
    if (where) {
      details.push(where);
    }
    if (details.length) {
      const line = element("p", "details");
      details.forEach((part, index) => {
        line.append(index ? " · " : "", element("span", "part", part)); // kept on one line
      });
      item.append(line);
    }
    if (finding.severity === "normal" && !finding.review) {
      return item; // "nothing found": said, and nothing to review
    }
    item.append(reviewState(finding));
    if (editing === finding.id) {
      item.append(correctionForm(finding));
      return item;
    }
    const buttons = element("div", "finding-buttons");
    if (reading.canWrite(user)) {
      if (!finding.review || revising.has(finding.id)) {
        buttons.append(
          button("ai.confirm", "confirmed"),
          button("ai.reject", "rejected", "small quiet"),
          button("ai.modify", "modify", "small quiet"),
        );
        if (finding.review) {
          buttons.append(button("ai.cancel", "cancel", "small quiet")); // keep the decision
        }
      } else {
        buttons.append(button("ai.review_again", "revise", "small quiet"));
      }
      if (accepted(finding)) {
        buttons.append(button("ai.insert", "insert", "small quiet"));
      }
    }
    if (buttons.children.length) {
      item.append(buttons);
    }
    return item;
  }

  // The panel's summary, counted as the worklist counts (rejected and normal findings
  // left out), in the reader's words.
  function summary() {
    const shown = findings.filter(
      (finding) => current(finding).severity !== "normal" && !rejected(finding),
    );
    const critical = shown.filter((finding) => current(finding).severity === "critical");
    const waiting = findings.filter(flagged).length;
    const node = byId("ai-summary");
    node.replaceChildren();
    node.className = "ai-summary" + (waiting ? " flagged" : "");
    if (!findings.length) {
      node.textContent = ""; // the list's place says it
    } else if (!shown.length) {
      node.textContent = t("ai.summary_nothing");
    } else {
      const parts = [t("ai.summary_findings", { count: shown.length })];
      if (critical.length) {
        parts.push(t("ai.summary_critical", { count: critical.length }));
      }
      if (waiting) {
        parts.push(t("ai.summary_to_review", { count: waiting }));
        const icon = element("span", "icon", "⚑ ");
        icon.setAttribute("aria-hidden", "true");
        node.append(icon);
      }
      parts.forEach((part, index) => {
        node.append(index ? " · " : "", element("span", "part", part)); // kept on one line
      });
    }
    node.hidden = !node.textContent;
  }

  // A measurement's name as a catalogue key: "Left lung LAA%-950" -> left_lung_laa_950.
  function measureKey(name) {
    const words = String(name).toLowerCase().replace(/[^a-z0-9]+/g, "_");
    return "ai.measure." + words.replace(/^_|_$/g, "");
  }

  // What each analysis measured, one small list per analysis ("Metal · series 2").
  function measurementsList() {
    const container = byId("ai-measurements");
    const groups = [];
    for (const analysis of analyses) {
      const measured = analysis.measurements || [];
      if (!measured.length) {
        continue;
      }
      const group = element("div", "analysis");
      const series = seriesInfo.get(analysis.series);
      const title = [known("ai.analyzer." + analysis.analyzer, analysis.analyzer)];
      if (series && series.number) {
        title.push(t("ai.place_series", { series: series.number }));
      }
      group.append(element("h4", null, title.join(" · ")));
      const list = element("dl");
      for (const measurement of measured) {
        const value =
          typeof measurement.value === "number" ? number(measurement.value, 2) : measurement.value;
        const unit = UNITS[measurement.unit] ?? measurement.unit ?? "";
        const row = element("div");
        row.append(
          element("dt", null, known(measureKey(measurement.name), measurement.name)),
          element("dd", null, unit ? value + " " + unit : value),
        );
        list.append(row);
      }
      group.append(list);
      groups.push(group);
    }
    byId("ai-analyses").replaceChildren(...groups);
    container.hidden = !groups.length;
  }

  function render() {
    const focus = document.activeElement;
    const kept = focus && focus.closest && focus.closest("#ai-list li");
    const keptAction = kept && focus.dataset.action;
    summary();
    const list = byId("ai-list");
    list.replaceChildren(...ordered().map(findingItem));
    list.hidden = !findings.length;
    byId("ai-findings").hidden = findings.length > 0;
    byId("ai-findings").textContent = analyses.length ? t("ai.no_findings") : t("study.ai_none");
    measurementsList();
    followReport();
    // The focus stays with the finding it was on (a button redrawn is a new one).
    if (kept) {
      const item = list.querySelector('li[data-finding="' + kept.dataset.finding + '"]');
      const target =
        (item && item.querySelector('form [name="description"]')) ||
        (item && keptAction && item.querySelector('[data-action="' + keptAction + '"]')) ||
        (item && item.querySelector("button"));
      if (target) {
        target.focus({ preventScroll: true });
      }
    }
  }

  // -- loading -----------------------------------------------------------------------------

  // The series' UID, number and description (Orthanc's own resource), and the image
  // number of each finding's slice (DICOMweb): for "Show" and the report's words.
  async function places() {
    const wanted = new Set([
      ...findings.map((finding) => (finding.location || {}).series),
      ...analyses.map((analysis) => analysis.series),
    ]);
    wanted.delete(undefined);
    wanted.delete(null);
    await Promise.allSettled(
      [...wanted]
        .filter((id) => !seriesInfo.has(id))
        .map(async (id) => {
          const series = await api("/series/" + encodeURIComponent(id));
          const tags = series.MainDicomTags || {};
          seriesInfo.set(id, {
            uid: tags.SeriesInstanceUID,
            number: tags.SeriesNumber,
            description: tags.SeriesDescription,
          });
        }),
    );
    if (!studyUid) {
      return;
    }
    await Promise.allSettled(
      findings
        .map((finding) => finding.location || {})
        .filter((location) => location.instance && !imageNumbers.has(location.instance))
        .filter((location) => seriesInfo.has(location.series))
        .map(async (location) => {
          const series = seriesInfo.get(location.series).uid;
          const path =
            "/dicom-web/studies/" + encodeURIComponent(studyUid) +
            "/series/" + encodeURIComponent(series) +
            "/instances?SOPInstanceUID=" + encodeURIComponent(location.instance);
          const found = await api(path);
          const attribute = found.length && found[0]["00200013"];
          if (attribute && attribute.Value && attribute.Value.length) {
            imageNumbers.set(location.instance, attribute.Value[0]);
          }
        }),
    );
  }

  async function load() {
    const answer = await api("/api/studies/" + encodeURIComponent(studyId) + "/findings");
    findings = answer.findings || [];
    analyses = answer.analyses || [];
    await places();
    render();
  }

  // -- reviewing -----------------------------------------------------------------------------

  async function review(finding, body) {
    message("");
    try {
      const reviewed = await api("/api/findings/" + encodeURIComponent(finding.id) + "/review", {
        method: "POST",
        json: body,
      });
      findings = findings.map((one) => (one.id === reviewed.id ? reviewed : one));
      editing = null;
      revising.delete(finding.id);
      render();
      progress(t("ai.reviewed." + body.decision));
    } catch (error) {
      message(error.message);
    }
  }

  // A correction says what differs from what the analysis said (the review's ``changes``).
  function corrected(finding, form) {
    const changes = {};
    const description = form.elements.description.value.trim();
    if (description && description !== finding.description) {
      changes.description = description;
    }
    if (form.elements.severity.value !== finding.severity) {
      changes.severity = form.elements.severity.value;
    }
    const size = form.elements.size_mm.value.trim();
    if (size !== "" && Number(size) !== finding.size_mm) {
      changes.size_mm = Number(size);
    }
    return changes;
  }

  function submitCorrection(form) {
    const finding = findings.find((one) => String(one.id) === form.dataset.finding);
    const changes = corrected(finding, form);
    if (!Object.keys(changes).length) {
      message(t("ai.nothing_changed"));
      form.elements.description.focus();
      return;
    }
    review(finding, {
      decision: "modified",
      notes: form.elements.notes.value.trim(),
      changes: changes,
    });
  }

  // -- analysing -----------------------------------------------------------------------------

  async function watch(jobs) {
    const ids = jobs.map((job) => job.id);
    const running = (job) => job.state === "queued" || job.state === "running";
    let states = jobs;
    while (states.some(running)) {
      const done = states.filter((job) => !running(job)).length;
      const percent =
        states.reduce((sum, job) => sum + (running(job) ? job.progress || 0 : 100), 0) /
        states.length;
      progress(
        t("ai.analysing", { done: done, total: states.length, percent: number(percent, 0) }),
      );
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      states = await Promise.all(ids.map((id) => api("/api/jobs/" + encodeURIComponent(id))));
    }
    return states.filter((job) => job.state !== "succeeded");
  }

  async function analyze() {
    if (busy) {
      return;
    }
    busy = true;
    const trigger = byId("ai-analyze");
    trigger.disabled = true;
    message("");
    try {
      const answer = await api("/api/studies/" + encodeURIComponent(studyId) + "/analyze", {
        method: "POST",
      });
      if (!answer.jobs.length) {
        progress(t("ai.no_analyzer"));
        return;
      }
      const failed = await watch(answer.jobs);
      await load();
      const total = answer.jobs.length;
      progress(failed.length ? "" : t("ai.analysed", { total: total }));
      if (failed.length) {
        const why = failed.map((job) => job.error || t("job." + job.state)).join("; ");
        message(t("ai.analysis_failed", { count: failed.length, total: total, error: why }));
      }
    } catch (error) {
      progress("");
      message(error.message);
    } finally {
      busy = false;
      trigger.disabled = false;
    }
  }

  // -- events --------------------------------------------------------------------------------

  function clicked(event) {
    const target = event.target.closest("button[data-action]");
    const item = target && target.closest("li[data-finding]");
    if (!item) {
      return;
    }
    const finding = findings.find((one) => String(one.id) === item.dataset.finding);
    const action = target.dataset.action;
    if (action === "confirmed" || action === "rejected") {
      review(finding, { decision: action, notes: "" });
    } else if (action === "modify") {
      message("");
      editing = finding.id;
      render();
    } else if (action === "cancel") {
      message("");
      editing = null;
      revising.delete(finding.id);
      render();
    } else if (action === "revise") {
      revising.add(finding.id);
      render();
    } else if (action === "insert") {
      insert(finding);
    } else if (action === "show") {
      window.open(viewerUrl(finding), "hounsfield-viewer");
    }
  }

  async function start(account) {
    user = account;
    if (!STAFF.includes(user.role)) {
      return; // the findings are staff's
    }
    const row = api("/api/worklist/" + encodeURIComponent(studyId)).then(
      (study) => {
        studyUid = study.studyInstanceUid;
      },
      () => {}, // an unknown study: the page's own loading says so
    );
    byId("ai-analyze").hidden = false;
    await row;
    await load();
  }

  byId("ai-list").addEventListener("click", clicked);
  byId("ai-list").addEventListener("submit", function (event) {
    event.preventDefault();
    submitCorrection(event.target);
  });
  byId("ai-list").addEventListener("keydown", function (event) {
    if (event.key === "Escape" && editing !== null) {
      editing = null;
      render();
    }
  });
  byId("ai-analyze").addEventListener("click", analyze);
  // The report's sections are built, then made read-only or writable, by the report page.
  new MutationObserver(followReport).observe(byId("sections"), {
    childList: true,
    subtree: true,
    attributes: true,
    attributeFilter: ["readonly"],
  });

  window.hounsfieldI18n.ready
    .then(me)
    .then(start)
    .catch(function (error) {
      if (error.status !== 404) {
        message(error.message); // 404: no findings API (the extension was removed)
      }
    });
})();
