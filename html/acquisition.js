// The technicians' acquisition desk: the day's orders by station, a new order (its patient
// found in the HIS), studies whose patient the HIS names otherwise (corrected or dismissed),
// and for the chosen order its acquisition: projections uploaded (XMLHttpRequest, for a real
// upload progress bar) or simulated, stored, reconstructed once the study is complete, then
// a first look at the reconstruction. Our REST API with the sign-in cookies; words in the
// reader's language (i18n.js); the header, badges and names as the reading pages show them
// (reading.js).
(function () {
  "use strict";
  const { api, ApiError } = window.hounsfieldSession;
  const { t, dateTime, dicomDate } = window.hounsfieldI18n;
  const reading = window.hounsfieldReading;
  const POLL_MS = 1000;
  const REFRESH_MS = 5000;
  const FINISHED = ["succeeded", "failed", "cancelled"];
  // The order's fields as the API names them (in its 400 details): the form's too.
  const ORDER_FIELDS = [
    "patient.id",
    "patient.name",
    "patient.birth_date",
    "patient.sex",
    "accession_number",
    "modality",
    "requested_procedure",
    "scheduled_station_ae",
    "scheduled_time",
    "priority",
  ];
  const ORBIT = [
    "source_to_isocenter_mm",
    "source_to_detector_mm",
    "arc_degrees",
    "first_angle_degrees",
  ];
  const $ = (id) => document.getElementById(id);
  const day = $("day");
  const orderForm = $("order-form");
  const uploadForm = $("upload-form");
  const simulateForm = $("simulate-form");
  const drawn = {}; // what each list shows, to leave it alone (and its focus) when unchanged
  let orders = new Map(); // id -> the order as the API gave it
  let chosen = null;
  let following = 0; // the acquisition followed: choosing again stops the older one's polling
  let busy = false; // the chosen order's acquisition is under way
  let refresh = null;
  let unreachable = false; // the message shown is the lists' failure (cleared once they load)

  function show(text) {
    $("message").textContent = text;
    $("message").hidden = !text;
  }

  const pause = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined) made.textContent = text;
    return made;
  }

  function changed(list, value) {
    const key = JSON.stringify(value);
    if (drawn[list] === key) return false;
    drawn[list] = key;
    return true;
  }

  // The browser's wall clock as <input type=date> ("2024-05-01") and datetime-local want it.
  function local(date) {
    return new Date(date.getTime() - date.getTimezoneOffset() * 60000).toISOString().slice(0, 16);
  }

  function csrfToken() {
    const found = document.cookie.split("; ").find((item) => item.startsWith("hf_csrf="));
    return found ? decodeURIComponent(found.slice("hf_csrf=".length)) : "";
  }

  function number(value) {
    return value.toLocaleString(window.hounsfieldI18n.language);
  }

  function statusBadge(status) {
    return element("span", "badge order-" + status, t("acquisition.status." + status));
  }

  function patientFacts(patient) {
    return [
      t("acquisition.patient_id", { id: patient.id }),
      patient.birth_date && t("acquisition.born", { date: dicomDate(patient.birth_date) }),
      patient.sex && t("acquisition.sex." + patient.sex),
    ];
  }

  function orderFacts(order) {
    return [
      t("acquisition.patient_id", { id: order.patient.id }),
      t("acquisition.accession", { accession: order.accession_number }),
      order.modality,
      order.requested_procedure,
    ].filter(Boolean).join(" · ");
  }

  // -- the day's orders, by station ------------------------------------------------------

  async function loadOrders() {
    const asked = day.value;
    const listing = await api("/api/orders?" + new URLSearchParams({ date: asked }));
    if (asked === day.value) renderOrders(listing.orders);
  }

  function orderItem(order) {
    const button = element("button", "order " + order.status);
    button.type = "button";
    button.dataset.order = order.id;
    button.setAttribute("aria-pressed", String(chosen !== null && chosen.id === order.id));
    const who = element("span", "who");
    who.append(
      element("strong", "", reading.personName(order.patient.name)),
      element("small", "", orderFacts(order)),
    );
    const badges = element("span", "badges");
    badges.append(reading.badge("priority", order.priority), statusBadge(order.status));
    const time = order.scheduled_time.slice(11, 16); // the department's clock: "…T14:30:00"
    button.append(element("span", "time", time), who, badges);
    const item = element("li");
    item.append(button);
    return item;
  }

  function renderOrders(list) {
    orders = new Map(list.map((order) => [order.id, order]));
    if (chosen && orders.has(chosen.id)) {
      chosen = orders.get(chosen.id);
      showChosen();
    }
    if (!changed("orders", list)) return;
    const focused = document.activeElement && document.activeElement.dataset.order;
    const stations = new Map();
    for (const order of list) {
      const station = order.scheduled_station_ae;
      stations.set(station, [...(stations.get(station) || []), order]);
    }
    $("orders").replaceChildren(
      ...[...stations.keys()].sort().map(function (station) {
        const group = element("div", "station");
        const items = element("ul", "orders");
        items.append(...stations.get(station).map(orderItem));
        group.append(element("h3", "", station), items);
        return group;
      }),
    );
    $("no-orders").hidden = list.length > 0;
    const again = focused && $("orders").querySelector('[data-order="' + focused + '"]');
    if (again) again.focus();
  }

  async function refreshLists() {
    clearTimeout(refresh);
    try {
      await Promise.all([loadOrders(), loadMismatches()]);
      if (unreachable) show("");
      unreachable = false;
    } catch (error) {
      show(error.message);
      unreachable = true;
    }
    refresh = setTimeout(refreshLists, REFRESH_MS);
  }

  // -- the chosen order ------------------------------------------------------------------

  function showChosen() {
    const scheduled = chosen.status === "scheduled";
    $("no-choice").hidden = true;
    $("chosen").hidden = false;
    $("chosen-name").textContent = reading.personName(chosen.patient.name);
    $("chosen-facts").textContent = [
      ...patientFacts(chosen.patient),
      t("acquisition.accession", { accession: chosen.accession_number }),
    ].filter(Boolean).join(" · ");
    $("chosen-when").textContent = [
      chosen.modality,
      chosen.requested_procedure,
      chosen.scheduled_station_ae,
      dateTime(chosen.scheduled_time),
    ].filter(Boolean).join(" · ");
    $("chosen-badges").replaceChildren(
      reading.badge("priority", chosen.priority),
      statusBadge(chosen.status),
    );
    $("cancel-order").hidden = !scheduled || busy;
    $("cancelled-note").hidden = chosen.status !== "cancelled";
    $("acquire").hidden = !scheduled || busy;
  }

  function choose(order) {
    chosen = order;
    busy = false;
    const ticket = ++following;
    window.history.replaceState(null, "", "?order=" + order.id);
    for (const button of $("orders").querySelectorAll("[data-order]")) {
      button.setAttribute("aria-pressed", String(Number(button.dataset.order) === order.id));
    }
    for (const row of document.querySelectorAll(".step")) row.hidden = true;
    $("qc").hidden = true;
    showChosen();
    if (order.study) {
      resume(order, ticket).catch((error) => show(error.message));
    }
  }

  // An order acquired before: its reconstruction, from its study's projection series.
  async function resume(order, ticket) {
    const listing = await api("/api/projections?limit=1000");
    const series = listing.projections.find((item) => item.study === order.study);
    if (series && ticket === following) await follow(series.id, ticket);
  }

  // -- acquiring: upload or simulator, storing, reconstruction ---------------------------

  // One line of progress: ``progress`` null is "under way" (no figure), undefined leaves it.
  function step(name, progress, text, state) {
    const row = $("step-" + name);
    const bar = row.querySelector("progress");
    row.hidden = false;
    row.dataset.state = state;
    if (progress === null) bar.removeAttribute("value");
    else if (progress !== undefined) bar.value = progress;
    row.querySelector(".step-text").textContent = text;
  }

  function jobText(job) {
    if (job.state === "failed") return t("acquisition.failed", { error: job.error });
    const state = t("job." + job.state, { progress: job.progress });
    return job.state === "running" && job.message ? state + " · " + job.message : state;
  }

  async function untilFinished(jobId, name, ticket) {
    for (;;) {
      const job = await api("/api/jobs/" + encodeURIComponent(jobId));
      if (ticket !== following) return null;
      step(name, job.state === "succeeded" ? 100 : job.progress, jobText(job), job.state);
      if (FINISHED.includes(job.state)) return job;
      await pause(POLL_MS);
    }
  }

  // The projection series' newest reconstruction (the automatic one starts once the study
  // is complete), followed until it ends; its QC shown when it succeeded.
  async function follow(series, ticket) {
    for (;;) {
      const query = new URLSearchParams({ series: series, limit: 1 });
      const listing = await api("/api/reconstructions?" + query);
      if (ticket !== following) return;
      const run = listing.reconstructions[0];
      const verdict = listing.series;
      if (!run && verdict && !verdict.reconstructable) {
        const why = t("recon.not_reconstructable", { reason: verdict.reason });
        step("reconstruction", 0, why, "failed");
        return;
      }
      if (!run) {
        step("reconstruction", null, t("acquisition.waiting_complete"), "waiting");
      } else {
        const progress = run.state === "succeeded" ? 100 : run.progress;
        step("reconstruction", progress, jobText(run), run.state);
        if (run.state === "succeeded") showQc(run, series);
        if (FINISHED.includes(run.state)) return;
      }
      await pause(POLL_MS);
    }
  }

  // ``start`` sends the acquisition and answers its job; ``first`` is the step it shows.
  async function acquire(first, start) {
    const ticket = ++following;
    let stage = first;
    busy = true;
    show("");
    for (const row of document.querySelectorAll(".step")) row.hidden = true;
    $("qc").hidden = true;
    showChosen();
    try {
      step(stage, 0, t("acquisition.sending"), "running");
      const job = await start(ticket);
      stage = "archive";
      const stored = await untilFinished(job.id, stage, ticket);
      if (stored && stored.state === "succeeded") {
        stage = "reconstruction";
        await follow(stored.result.series, ticket);
      }
    } catch (error) {
      if (ticket === following) {
        step(stage, undefined, t("acquisition.failed", { error: error.message }), "failed");
      }
    }
    if (ticket === following) {
      busy = false;
      showChosen();
      refreshLists();
    }
  }

  // What the order gives the acquisition: its patient, accession number and study UID.
  function fromOrder(order) {
    const fields = {
      patient_id: order.patient.id,
      patient_name: order.patient.name,
      patient_birth_date: order.patient.birth_date,
      patient_sex: order.patient.sex,
      accession_number: order.accession_number,
      study_instance_uid: order.studyInstanceUid,
    };
    if (order.requested_procedure) fields.study_description = order.requested_procedure;
    return fields;
  }

  function geometry() {
    const form = uploadForm.elements;
    const spacing = Number(form.pixel_spacing_mm.value);
    const fields = {
      ...fromOrder(chosen),
      pixel_spacing_mm: [spacing, spacing],
      i0: Number(form.i0.value),
    };
    if (!form.rtk_geometry.files.length) {
      for (const name of ORBIT) fields[name] = Number(form[name].value);
    }
    return fields;
  }

  function megabytes(bytes) {
    const style = { maximumFractionDigits: 1 };
    return (bytes / 1048576).toLocaleString(window.hounsfieldI18n.language, style);
  }

  // Named parts as a multipart/mixed body (Orthanc's HTTP server keeps multipart/form-data
  // for itself); a file is a reference in the Blob, not read into memory. The boundary is
  // lower case: a Blob's type is.
  function multipart(parts) {
    const boundary = "hounsfield-" + Date.now() + "-" + Math.random().toString(36).slice(2);
    const pieces = parts.flatMap(([name, value]) => [
      `--${boundary}\r\nContent-Disposition: form-data; name="${name}"\r\n` +
        `Content-Type: ${value.type || "application/octet-stream"}\r\n\r\n`,
      value,
      "\r\n",
    ]);
    const type = "multipart/mixed; boundary=" + boundary;
    return new Blob([...pieces, `--${boundary}--\r\n`], { type: type });
  }

  function upload(ticket) {
    const form = uploadForm.elements;
    const body = multipart([
      ["geometry", new Blob([JSON.stringify(geometry())], { type: "application/json" })],
      ...[...form.projections.files].map((file) => ["projections", file]),
      ...[...form.rtk_geometry.files].map((file) => ["rtk_geometry", file]),
    ]);
    return new Promise(function (resolve, reject) {
      const request = new XMLHttpRequest();
      request.open("POST", "/api/acquisitions");
      request.setRequestHeader("X-CSRF-Token", csrfToken());
      request.setRequestHeader("Content-Type", body.type);
      request.responseType = "json";
      request.upload.onprogress = function (event) {
        if (ticket === following && event.lengthComputable) {
          const sent = { sent: megabytes(event.loaded), total: megabytes(event.total) };
          const percent = (100 * event.loaded) / event.total;
          step("upload", percent, t("acquisition.sent", sent), "running");
        }
      };
      request.upload.onload = function () {
        if (ticket === following) step("upload", 100, t("acquisition.checking"), "running");
      };
      request.onload = function () {
        if (request.status !== 202) {
          reject(new ApiError(request.status, request.response || {}));
          return;
        }
        if (ticket === following) step("upload", 100, t("acquisition.uploaded"), "succeeded");
        resolve(request.response);
      };
      request.onerror = () => reject(new Error(t("acquisition.connection_lost")));
      request.send(body);
    });
  }

  function simulate() {
    const fields = fromOrder(chosen);
    for (const name of ["projections", "detector_columns", "detector_rows"]) {
      const value = simulateForm.elements[name].value;
      if (value !== "") fields[name] = Number(value);
    }
    return api("/api/acquisitions/simulate", { method: "POST", json: fields });
  }

  // -- the reconstruction at a glance ----------------------------------------------------

  function showPlanes() {
    const series = "/api/series/" + encodeURIComponent($("qc").dataset.series);
    const preset = "?window=" + $("window").value;
    for (const image of document.querySelectorAll(".planes img")) {
      image.src = series + "/planes/" + image.dataset.plane + preset;
    }
  }

  function figure(key, value) {
    const row = element("div");
    const shown = typeof value === "number" ? number(value) : value;
    row.append(element("dt", "", t(key)), element("dd", "", shown));
    return row;
  }

  function showQc(run, series) {
    const result = run.result;
    const qc = result.qc || {};
    $("qc").dataset.series = result.series;
    $("plane-problem").hidden = true;
    showPlanes();
    $("figures").replaceChildren(
      figure("recon.column.mean", qc.centreMeanHu),
      figure("recon.column.noise", qc.noiseHu),
      figure("recon.column.uniformity", qc.uniformityHu),
      figure("recon.column.ring", qc.ringIndexHu),
      figure("recon.method", result.method.toUpperCase()),
      figure("recon.column.grid", result.grid.size.join(" × ")),
      figure("recon.column.seconds", result.reconstructionSeconds),
      figure("recon.column.device", result.device),
    );
    $("open-ohif").href = result.viewer;
    $("tune").href = "/recon?series=" + encodeURIComponent(series);
    $("qc").hidden = false;
  }

  // -- a new order ------------------------------------------------------------------------

  function defaults() {
    orderForm.elements.scheduled_time.value = local(new Date());
  }

  function clearErrors() {
    for (const note of orderForm.querySelectorAll(".field-error")) note.remove();
    for (const control of orderForm.querySelectorAll("[aria-invalid]")) {
      control.removeAttribute("aria-invalid");
    }
    $("order-error").hidden = true;
    $("order-status").textContent = "";
  }

  function markField(name, text) {
    const control = orderForm.elements[name];
    control.setAttribute("aria-invalid", "true");
    control.closest("label").append(element("small", "field-error", text));
  }

  // A refusal in words: each field the API names (400) or the accession number taken (409).
  function orderRefused(error) {
    const details = (error.answer && error.answer.details) || [];
    const named = (detail) =>
      ORDER_FIELDS.find((name) => detail.field === name || detail.field.startsWith(name + "."));
    const fields = new Set(details.map(named));
    fields.delete(undefined);
    if (error.status === 409) markField("accession_number", t("acquisition.duplicate"));
    for (const name of fields) markField(name, t("acquisition.invalid." + name));
    const marked = fields.size > 0 || error.status === 409;
    $("order-error").textContent = marked ? t("acquisition.not_placed") : error.message;
    $("order-error").hidden = false;
    const first = orderForm.querySelector("[aria-invalid]");
    if (first) first.focus();
  }

  function orderBody() {
    const value = (name) => orderForm.elements[name].value.trim();
    const family = value("patient.name");
    return {
      patient: {
        id: value("patient.id"),
        name: family && [family, value("given_name")].filter(Boolean).join("^"),
        birth_date: value("patient.birth_date"),
        sex: value("patient.sex"),
      },
      accession_number: value("accession_number"),
      modality: value("modality"),
      requested_procedure: value("requested_procedure"),
      scheduled_station_ae: value("scheduled_station_ae"),
      scheduled_time: value("scheduled_time"),
      priority: value("priority"),
    };
  }

  orderForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    clearErrors();
    $("place").disabled = true;
    try {
      const order = await api("/api/orders", { method: "POST", json: orderBody() });
      orderForm.reset();
      defaults();
      lookupStatus("", false);
      $("order-status").textContent = t("acquisition.placed", {
        accession: order.accession_number,
        patient: reading.personName(order.patient.name),
      });
      day.value = order.scheduled_time.slice(0, 10);
      await refreshLists();
      choose(order);
    } catch (error) {
      orderRefused(error);
    } finally {
      $("place").disabled = false;
    }
  });

  // -- the patient, from the HIS ------------------------------------------------------------

  function fillPatient(patient) {
    const form = orderForm.elements;
    const [family, ...given] = patient.name.split("^");
    form["patient.id"].value = patient.id;
    form["patient.name"].value = family;
    form.given_name.value = given.join("^").replace(/\^+$/, "");
    const birth = /^(\d{4})(\d{2})(\d{2})$/.exec(patient.birth_date);
    form["patient.birth_date"].value = birth ? birth.slice(1).join("-") : "";
    form["patient.sex"].value = ["M", "F", "O"].includes(patient.sex) ? patient.sex : "";
    $("lookup-results").replaceChildren();
    lookupStatus(t("acquisition.lookup_filled"), false);
    form.accession_number.focus();
  }

  function patientItem(patient) {
    const button = element("button", "quiet");
    button.type = "button";
    const facts = [reading.personName(patient.name), ...patientFacts(patient)];
    button.textContent = facts.filter(Boolean).join(" · ");
    button.addEventListener("click", () => fillPatient(patient));
    const item = element("li");
    item.append(button);
    return item;
  }

  function lookupStatus(text, problem) {
    $("lookup-status").textContent = text;
    $("lookup-status").classList.toggle("problem", problem);
  }

  // Without the HIS (503), or when it fails (502, 504), the patient is entered by hand.
  function lookupRefused(error) {
    if (error.status === 503) return t("acquisition.lookup_no_his");
    if (error.status === 504) return t("acquisition.lookup_timeout");
    return t("acquisition.lookup_failed", { error: error.message });
  }

  $("lookup").addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = event.target.elements;
    lookupStatus(t("acquisition.lookup_asking"), false);
    $("lookup-results").replaceChildren();
    try {
      const query = new URLSearchParams({ [form.by.value]: form.term.value.trim() });
      const found = (await api("/api/patients?" + query)).patients;
      const said = found.length
        ? t("acquisition.lookup_found", { count: found.length })
        : t("acquisition.lookup_none");
      lookupStatus(said, false);
      $("lookup-results").replaceChildren(...found.map(patientItem));
    } catch (error) {
      lookupStatus(lookupRefused(error), true);
    }
  });

  // -- studies the HIS names otherwise ----------------------------------------------------

  function tagValue(tag, value) {
    if (!value) return t("acquisition.empty_value");
    if (tag === "PatientName") return reading.personName(value);
    if (tag === "PatientBirthDate") return dicomDate(value);
    if (tag === "PatientSex") return t("acquisition.sex." + value);
    return value;
  }

  // A mismatch as the API gives it: open (with the last correction's error, if one
  // failed) or being corrected (Orthanc modifies the study; no figure to show).
  function mismatchItem(mismatch) {
    const item = element("li", "mismatch");
    item.dataset.mismatch = mismatch.id;
    const correcting = mismatch.status === "correcting";
    const head = element("tr");
    const what = element("th");
    what.append(element("span", "visually-hidden", t("acquisition.mismatch.detail")));
    head.append(
      what,
      element("th", "", t("acquisition.mismatch.study_says")),
      element("th", "", t("acquisition.mismatch.his_says")),
    );
    const table = element("table");
    table.append(head);
    for (const [tag, values] of Object.entries(mismatch.differences)) {
      const row = element("tr");
      const name = element("th", "", t("acquisition.tag." + tag));
      name.scope = "row";
      row.append(
        name,
        element("td", "", tagValue(tag, values.study)),
        element("td", "", tagValue(tag, values.his)),
      );
      table.append(row);
    }
    const buttons = element("div", "buttons");
    for (const [action, className] of [["correct", "small"], ["dismiss", "quiet small"]]) {
      const button = element("button", className, t("acquisition." + action));
      button.type = "button";
      button.dataset.action = action;
      button.disabled = correcting;
      buttons.append(button);
    }
    const state = element("p", "mismatch-state");
    if (correcting) {
      const progress = element("progress"); // no value: under way
      progress.setAttribute("aria-label", t("acquisition.correcting"));
      state.append(progress, t("acquisition.correcting"));
    } else if (mismatch.error) {
      state.textContent = t("acquisition.correction_failed", { error: mismatch.error });
      state.classList.add("problem");
    }
    const title = t("acquisition.mismatch.title", {
      patient: mismatch.patientId,
      time: dateTime(mismatch.found, "short"),
    });
    item.append(element("p", "mismatch-title", title), table, buttons, state);
    return item;
  }

  async function loadMismatches() {
    const [open, correcting] = await Promise.all(
      ["open", "correcting"].map((status) => api("/api/his/mismatches?status=" + status)),
    );
    const shown = [...open.mismatches, ...correcting.mismatches].sort((a, b) => b.id - a.id);
    if (changed("mismatches", shown)) {
      $("mismatch-list").replaceChildren(...shown.map(mismatchItem));
    }
    $("mismatches").hidden = shown.length === 0 && !$("mismatch-status").textContent;
  }

  // Correct (followed until Orthanc's copy is linked, or the correction failed) or dismiss.
  async function decide(item, action) {
    const path = "/api/his/mismatches/" + encodeURIComponent(item.dataset.mismatch);
    for (const button of item.querySelectorAll("button")) button.disabled = true;
    $("mismatch-status").textContent = "";
    try {
      let mismatch = await api(path + "/" + action, { method: "POST" });
      await loadMismatches();
      while (mismatch.status === "correcting") {
        await pause(POLL_MS);
        mismatch = await api(path);
      }
      if (mismatch.status !== "open") {
        $("mismatch-status").textContent = t("acquisition." + mismatch.status); // .corrected, .dismissed
      }
    } catch (error) {
      const state = item.querySelector(".mismatch-state");
      state.textContent = t("acquisition.failed", { error: error.message });
      state.classList.add("problem");
      for (const button of item.querySelectorAll("button")) button.disabled = false;
    }
    await refreshLists();
  }

  // -- the page ----------------------------------------------------------------------------

  $("orders").addEventListener("click", function (event) {
    const button = event.target.closest("[data-order]");
    if (button) choose(orders.get(Number(button.dataset.order)));
  });
  $("mismatch-list").addEventListener("click", function (event) {
    const button = event.target.closest("button[data-action]");
    if (button) decide(button.closest("[data-mismatch]"), button.dataset.action);
  });
  $("cancel-order").addEventListener("click", async function () {
    if (!window.confirm(t("acquisition.cancel_confirm"))) return;
    try {
      chosen = await api("/api/orders/" + chosen.id + "/cancel", { method: "POST" });
      showChosen();
      await refreshLists();
    } catch (error) {
      show(error.message);
    }
  });
  uploadForm.elements.rtk_geometry.addEventListener("change", function () {
    for (const name of ORBIT) uploadForm.elements[name].disabled = this.files.length > 0;
  });
  uploadForm.addEventListener("submit", function (event) {
    event.preventDefault();
    acquire("upload", upload);
  });
  simulateForm.addEventListener("submit", function (event) {
    event.preventDefault();
    acquire("archive", simulate);
  });
  $("window").addEventListener("change", showPlanes);
  document.querySelector(".planes").addEventListener(
    "error",
    function () {
      $("plane-problem").hidden = false;
    },
    true, // captured: an image's error does not bubble
  );
  day.addEventListener("change", refreshLists);

  async function start() {
    for (const image of document.querySelectorAll(".planes img")) {
      const plane = t("acquisition.plane." + image.dataset.plane);
      image.alt = t("acquisition.plane_alt", { plane: plane });
    }
    day.value = local(new Date()).slice(0, 10);
    defaults();
    const wanted = new URLSearchParams(window.location.search).get("order");
    const asked = wanted && api("/api/orders/" + encodeURIComponent(wanted));
    const order = asked && (await asked.catch(() => null)); // gone: the day's orders only
    if (order) day.value = order.scheduled_time.slice(0, 10);
    await refreshLists();
    if (order) choose(order);
  }

  window.hounsfieldI18n.ready
    .then(reading.header)
    .then(start)
    .catch((error) => show(error.message));
})();
