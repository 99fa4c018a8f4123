// A study's reading page (/reading/study.html?id=<Orthanc study id>): who and what
// (GET /api/worklist/{id}), the viewer a click away, claim and release, and the report.
//
// The report is written by the claim holder, one text box per section, and saved as they
// type (a PUT a moment after the last key, naming the version it replaces). A save refused
// because someone saved first (409 with the version the report is at) is never retried
// over theirs: the page says so and offers to reload. Signing locks the report; an
// amendment is a new signed version with a reason. Report text is only ever set as
// ``value`` or ``textContent``: whatever it holds is shown as written, never run.
(function () {
  "use strict";
  const { t, clock, dateTime, dicomDate } = window.hounsfieldI18n;
  const reading = window.hounsfieldReading;
  const api = window.hounsfieldSession.api;
  // The report's sections in reading order (the API's SECTIONS).
  const SECTIONS = [
    "clinical_information",
    "technique",
    "comparison",
    "findings",
    "impression",
    "recommendations",
  ];
  const SAVE_AFTER_MS = 800;
  const PDF_RETRY_MS = 2000;
  const studyId = new URLSearchParams(window.location.search).get("id") || "";
  const base = "/api/studies/" + encodeURIComponent(studyId);
  const byId = (id) => document.getElementById(id);
  const boxes = {}; // section -> its textarea
  const templateSelect = byId("template");
  const languageSelect = byId("report-language");

  let user = null;
  let study = null; // the worklist row
  let report = null; // the report as the server last gave it
  let amending = false;
  let edited = false; // typed since the last save
  let fromTemplate = false; // the text is a template's, untouched: another may replace it
  let conflicted = false; // someone else saved first: no more saves until reloaded
  let saving = null; // the save under way
  const studyRow = () => api("/api/worklist/" + encodeURIComponent(studyId));
  // The viewer needs only the study's UID: the row is asked for at once, so that the button
  // works before the page's words, templates and report have loaded; the first load uses it.
  let firstRow = studyRow();
  let timer = null;

  function show(text) {
    byId("message").textContent = text;
    byId("message").hidden = !text;
  }

  function saveState(kind, values) {
    const state = byId("save-state");
    state.textContent = kind ? t("study.state." + kind, values) : "";
    state.className = "save-state " + (kind || "");
  }

  function writable() {
    if (!reading.canWrite(user) || conflicted) {
      return false;
    }
    return amending || (reading.isOpen(study.status) && study.assignedTo === user.username);
  }

  // -- the study -----------------------------------------------------------------------

  function fact(list, key, value) {
    if (!value) {
      return;
    }
    const group = document.createElement("div"); // kept on one line when the list wraps
    const term = document.createElement("dt");
    term.textContent = t("study.fact_label", { label: t(key) });
    const detail = document.createElement("dd");
    detail.textContent = value;
    group.append(term, detail);
    list.append(group);
  }

  function renderStudy() {
    byId("patient-name").textContent = reading.personName(study.patientName) || "—";
    const facts = byId("facts");
    facts.replaceChildren();
    fact(facts, "study.patient_id", study.patientId);
    fact(facts, "study.birth_date", dicomDate(study.patientBirthDate));
    fact(facts, "study.sex", study.patientSex);
    fact(facts, "column.accession", study.accession);
    fact(facts, "column.modalities", study.modalities.join(", "));
    fact(facts, "column.description", study.description);
    fact(facts, "column.study_date", dicomDate(study.studyDate));
    fact(
      facts,
      "column.images",
      t("worklist.images", { series: study.series, instances: study.instances }),
    );
    fact(facts, "column.arrival", dateTime(study.arrival));
    byId("priority").replaceChildren(reading.badge("priority", study.priority));
    byId("status").replaceChildren(reading.badge("status", study.status));
    const holder = byId("holder");
    holder.replaceChildren();
    if (study.assignedTo) {
      const mine = study.assignedTo === user.username;
      const badge = document.createElement("span");
      badge.className = "badge assigned" + (mine ? " mine" : "");
      badge.textContent = mine
        ? t("worklist.claimed_by_you")
        : t("claim.held_by", { holder: study.assignedTo });
      holder.append(badge);
    }
    const claimable = reading.canWrite(user) && reading.isOpen(study.status);
    byId("claim").hidden = !claimable || study.assignedTo === user.username;
    byId("release").hidden = !claimable || study.assignedTo !== user.username;
  }

  // -- the report ----------------------------------------------------------------------

  function buildSections() {
    const container = byId("sections");
    for (const section of SECTIONS) {
      const label = document.createElement("label");
      label.className = "section";
      const title = document.createElement("span");
      title.textContent = t("section." + section);
      const box = document.createElement("textarea");
      box.name = section;
      box.rows = section === "findings" ? 8 : 3;
      box.addEventListener("input", typed);
      label.append(title, box);
      container.append(label);
      boxes[section] = box;
    }
  }

  function fill(sections) {
    for (const section of SECTIONS) {
      boxes[section].value = sections[section] || "";
    }
  }

  function choose(select, value) {
    select.value = value;
    select.dataset.shown = value; // put back when replacing the text is declined
  }

  // What may be done with the report now (its text is left as it is: see loadAll).
  function renderReport() {
    const canWrite = writable();
    for (const box of Object.values(boxes)) {
      box.readOnly = !canWrite;
    }
    templateSelect.disabled = languageSelect.disabled = !canWrite;
    const signed = report.status === "final" || report.status === "amended";
    const heldByOther = Boolean(study.assignedTo) && study.assignedTo !== user.username;
    byId("sign").hidden = !canWrite || amending || signed;
    byId("amend").hidden = !reading.canWrite(user) || !signed || amending || heldByOther;
    byId("sign-amendment").hidden = byId("cancel-amendment").hidden = !amending;
    byId("reason-row").hidden = !amending;
    const mine = study.assignedTo === user.username;
    const hint = byId("hint");
    hint.hidden = !reading.canWrite(user) || signed || amending || mine;
    hint.textContent = t("study.claim_to_write");
  }

  function content(extra) {
    const sections = {};
    for (const section of SECTIONS) {
      if (boxes[section].value.trim()) {
        sections[section] = boxes[section].value;
      }
    }
    return {
      template: templateSelect.value,
      language: languageSelect.value,
      sections: sections,
      version: report.version,
      ...extra,
    };
  }

  function typed() {
    edited = true;
    fromTemplate = false;
    if (!amending) {
      saveState("unsaved");
      clearTimeout(timer);
      timer = setTimeout(save, SAVE_AFTER_MS);
    }
  }

  function refused(error) {
    const answer = error.answer || {};
    if (error.status === 409 && answer.version !== undefined && !("holder" in answer)) {
      conflicted = true;
      byId("conflict-text").textContent = t("study.conflict", { version: answer.version });
      byId("conflict").hidden = false;
      saveState("conflict");
      renderReport(); // read-only until reloaded: nothing typed now could be saved
    } else {
      saveState("failed");
      show(reading.refusal(error));
    }
  }

  async function put() {
    try {
      report = await api(base + "/report", { method: "PUT", json: content() });
      study.status = report.status;
      byId("status").replaceChildren(reading.badge("status", study.status));
      saveState(edited ? "unsaved" : "saved", { time: clock(report.updated) });
      if (edited) {
        timer = setTimeout(save, SAVE_AFTER_MS);
      }
    } catch (error) {
      edited = true;
      refused(error);
    }
  }

  // Save what was typed, one save at a time (each names the version the previous made).
  async function save() {
    clearTimeout(timer);
    while (saving) {
      await saving;
    }
    if (!edited || conflicted || !writable() || amending) {
      return;
    }
    edited = false;
    show("");
    saveState("saving");
    saving = put().finally(() => {
      saving = null;
    });
    await saving;
  }

  async function replaceText() {
    if (!fromTemplate && !window.confirm(t("study.replace_text"))) {
      choose(templateSelect, templateSelect.dataset.shown);
      choose(languageSelect, languageSelect.dataset.shown);
      return;
    }
    const path = base + "/report/templates/" + encodeURIComponent(templateSelect.value);
    try {
      const filled = await api(path + "?language=" + encodeURIComponent(languageSelect.value));
      fill(filled.sections);
      choose(templateSelect, templateSelect.value);
      choose(languageSelect, languageSelect.value);
      typed();
      fromTemplate = true;
    } catch (error) {
      show(error.message);
    }
  }

  async function sign() {
    edited = edited || report.version === 0; // a template's text, never saved: the draft signed
    await save();
    if (edited || conflicted) {
      return; // not saved: nothing of it to sign
    }
    try {
      await api(base + "/report/sign", { method: "POST", json: { version: report.version } });
      show("");
      await loadAll();
    } catch (error) {
      show(reading.refusal(error));
    }
  }

  async function signAmendment() {
    const reason = byId("reason").value.trim();
    if (!reason) {
      show(t("study.reason_required"));
      byId("reason").focus();
      return;
    }
    try {
      await api(base + "/report/amend", { method: "POST", json: content({ reason: reason }) });
      show("");
      amending = false;
      byId("reason").value = "";
      await loadAll();
    } catch (error) {
      show(reading.refusal(error));
    }
  }

  // -- history and the PDFs --------------------------------------------------------------

  function pdfUrl(number) {
    return base + "/report/pdf?version=" + number;
  }

  // The newest PDF is stored into the study a moment after signing (503 until then).
  async function whenStored(link, number) {
    const response = await fetch(pdfUrl(number), { credentials: "same-origin" }).catch(() => null);
    if ((!response || response.status === 503) && link.isConnected) {
      setTimeout(() => whenStored(link, number), PDF_RETRY_MS);
      return;
    }
    if (response && response.ok) {
      link.href = pdfUrl(number);
      link.textContent = t("study.pdf");
      link.removeAttribute("aria-disabled");
    }
  }

  function versionEntry(version, newest) {
    const item = document.createElement("li");
    const title = document.createElement("strong");
    title.textContent = t("study.version", { number: version.number });
    const signed = document.createElement("span");
    signed.textContent = t("study.signed_by", {
      signer: version.signer,
      time: dateTime(version.signed),
    });
    const link = document.createElement("a");
    link.target = "_blank";
    link.dataset.version = version.number;
    if (newest) {
      link.textContent = t("study.pdf_pending");
      link.setAttribute("aria-disabled", "true");
      whenStored(link, version.number);
    } else {
      link.href = pdfUrl(version.number);
      link.textContent = t("study.pdf");
    }
    item.append(title, " ", reading.badge("status", version.status), signed);
    if (version.reason) {
      const reason = document.createElement("span");
      reason.textContent = t("study.amended_because", { reason: version.reason });
      item.append(reason);
    }
    item.append(link);
    return item;
  }

  async function loadHistory() {
    const { versions } = await api(base + "/report/history");
    byId("versions").replaceChildren(
      ...versions.map((version, index) => versionEntry(version, index === versions.length - 1)),
    );
    byId("no-versions").hidden = versions.length > 0;
  }

  // -- loading -----------------------------------------------------------------------------

  async function loadTemplates() {
    const language = encodeURIComponent(window.hounsfieldI18n.language);
    const shelf = await api(base + "/report/templates?language=" + language);
    templateSelect.replaceChildren(
      ...shelf.templates.map((template) => new Option(template.title, template.name)),
    );
  }

  async function loadAll() {
    const language = encodeURIComponent(window.hounsfieldI18n.language);
    const row = firstRow || studyRow(); // a reload (after a claim, say) asks again
    firstRow = null;
    [study, report] = await Promise.all([
      row,
      api(base + "/report?language=" + language),
    ]);
    if (![...templateSelect.options].some((option) => option.value === report.template)) {
      templateSelect.append(new Option(report.template, report.template)); // not offered now
    }
    edited = conflicted = amending = false;
    fromTemplate = report.status === null;
    byId("conflict").hidden = true;
    saveState(report.status === "draft" ? "saved" : null, { time: clock(report.updated) });
    fill(report.sections);
    choose(templateSelect, report.template);
    choose(languageSelect, report.language);
    renderStudy();
    renderReport();
    await loadHistory();
  }

  async function claimOrRelease(claiming) {
    show("");
    try {
      await save();
      await (claiming ? reading.claim : reading.release)(studyId);
    } catch (error) {
      show(reading.refusal(error));
    }
    await loadAll();
  }

  async function start(account) {
    user = account;
    document.title = t("study.page_title");
    for (const [code, name] of Object.entries(window.hounsfieldI18n.languages)) {
      languageSelect.append(new Option(name, code));
    }
    buildSections();
    if (reading.canWrite(user)) {
      await loadTemplates();
    }
    await loadAll();
  }

  firstRow.then(function (row) {
    const button = byId("open-viewer");
    const url = reading.viewer(row.studyInstanceUid);
    button.addEventListener("click", () => window.open(url, "hounsfield-viewer"));
    button.disabled = false;
  }, () => {}); // an unknown study: the page's own loading says so
  byId("claim").addEventListener("click", () => claimOrRelease(true));
  byId("release").addEventListener("click", () => claimOrRelease(false));
  byId("sign").addEventListener("click", sign);
  byId("amend").addEventListener("click", function () {
    amending = true;
    show("");
    renderReport();
    byId("reason").focus();
  });
  byId("sign-amendment").addEventListener("click", signAmendment);
  byId("cancel-amendment").addEventListener("click", function () {
    show("");
    loadAll();
  });
  byId("reload-report").addEventListener("click", () => loadAll());
  templateSelect.addEventListener("change", replaceText);
  languageSelect.addEventListener("change", replaceText);
  document.addEventListener("keydown", function (event) {
    if ((event.ctrlKey || event.metaKey) && event.key === "s") {
      event.preventDefault(); // the browser's "save page" is not what is meant here
      save();
    }
  });
  window.addEventListener("beforeunload", function (event) {
    if (edited || saving) {
      event.preventDefault(); // typed text not saved yet: the browser asks before leaving
    }
  });

  window.hounsfieldI18n.ready
    .then(reading.header)
    .then(start)
    .catch((error) => show(error.message));
})();
