// The reading worklist: GET /api/worklist as a table, filtered, sorted and paged by the
// page's own address (a reload or a shared link shows the same list), refreshed every few
// seconds without reloading (the table is rebuilt only when the list changed, and the row
// or button that had the focus gets it back). Rows are focusable: Enter (or a click) opens
// the study's reading page, the arrow keys move between rows.
(function () {
  "use strict";
  const { t, dateTime, dicomDate } = window.hounsfieldI18n;
  const reading = window.hounsfieldReading;
  const api = window.hounsfieldSession.api;
  const REFRESH_MS = 4000;
  const TYPING_MS = 350;
  const PAGE = 50;
  const FILTERS = [
    "status",
    "priority",
    "modality",
    "from",
    "to",
    "patientName",
    "patientId",
    "accession",
    "assigned",
  ];
  const form = document.getElementById("filters");
  const table = document.getElementById("worklist");
  const rows = table.querySelector("tbody");
  const message = document.getElementById("message");
  let user = null;
  let studies = new Map(); // id -> the row as the API gave it
  let shown = ""; // the listing on screen, to leave the table alone when nothing changed
  let asked = 0; // the latest request: an older answer arriving late is dropped
  let refresh = null;
  let typing = null;
  let unreachable = false; // the message shown is the list's failure (cleared once it loads)

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function address() {
    return new URLSearchParams(window.location.search);
  }

  function go(params) {
    const query = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (query ? "?" + query : ""));
    load();
  }

  function fillForm() {
    const params = address();
    for (const name of FILTERS) {
      form.elements[name].value = params.get(name) || "";
    }
  }

  function applyForm() {
    const params = new URLSearchParams();
    for (const name of FILTERS) {
      const value = form.elements[name].value.trim();
      if (value) {
        params.set(name, value);
      }
    }
    const sort = address().get("sort");
    if (sort) {
      params.set("sort", sort);
    }
    go(params); // back to the first page: the offset is left out
  }

  async function load() {
    clearTimeout(refresh);
    const ticket = ++asked;
    const params = address();
    params.set("limit", PAGE);
    try {
      const listing = await api("/api/worklist?" + params);
      if (ticket === asked) {
        if (unreachable) {
          show("");
          unreachable = false;
        }
        render(listing);
      }
    } catch (error) {
      if (ticket === asked) {
        show(error.message);
        unreachable = true;
      }
    } finally {
      if (ticket === asked) {
        refresh = setTimeout(load, REFRESH_MS);
      }
    }
  }

  function cell(content, className) {
    const td = document.createElement("td");
    if (content instanceof Node) {
      td.append(content);
    } else {
      td.textContent = content === undefined || content === null ? "" : String(content);
    }
    if (className) {
      td.className = className;
    }
    return td;
  }

  function patient(study) {
    const name = document.createElement("strong");
    name.textContent = reading.personName(study.patientName);
    const id = document.createElement("small");
    id.textContent = study.patientId;
    const both = document.createDocumentFragment();
    both.append(name, id);
    return both;
  }

  function assignee(study) {
    if (!study.assignedTo) {
      return "";
    }
    const span = document.createElement("span");
    const mine = study.assignedTo === user.username;
    span.className = "badge assigned" + (mine ? " mine" : "");
    span.textContent = study.assignedTo;
    span.title = mine ? t("worklist.claimed_by_you") : t("claim.held_by", { holder: study.assignedTo });
    return span;
  }

  function action(study) {
    if (!reading.canWrite(user) || !reading.isOpen(study.status)) {
      return "";
    }
    const mine = study.assignedTo === user.username;
    const button = document.createElement("button");
    button.type = "button";
    button.dataset.action = mine ? "release" : "claim";
    button.className = mine ? "quiet small" : "small";
    button.textContent = t(mine ? "claim.release" : "claim.claim");
    return button;
  }

  // The priority, and a flag when an analysis found something critical nobody has
  // reviewed yet (an icon, and words for those who do not see it).
  function priority(study) {
    const both = document.createDocumentFragment();
    both.append(reading.badge("priority", study.priority));
    if (study.flagged) {
      const flag = document.createElement("span");
      flag.className = "flag";
      flag.title = t("worklist.flagged");
      const icon = document.createElement("span");
      icon.setAttribute("aria-hidden", "true");
      icon.textContent = "⚑";
      const words = document.createElement("span");
      words.className = "visually-hidden";
      words.textContent = t("worklist.flagged");
      flag.append(icon, words);
      both.append(flag);
    }
    return both;
  }

  // The study's description, and under it what the AI analyses found (when they did).
  function description(study) {
    const both = document.createDocumentFragment();
    both.append(study.description || "");
    if (study.aiSummary) {
      const summary = document.createElement("small");
      summary.className = "ai-summary" + (study.flagged ? " flagged" : "");
      const label = document.createElement("span");
      label.className = "ai-label";
      label.textContent = t("worklist.ai");
      summary.append(label, " ", study.aiSummary);
      both.append(summary);
    }
    return both;
  }

  function row(study) {
    const tr = document.createElement("tr");
    tr.tabIndex = 0;
    tr.dataset.id = study.id;
    tr.dataset.priority = study.priority;
    if (study.flagged) {
      tr.dataset.flagged = "true";
    }
    tr.append(
      cell(priority(study), "priority"),
      cell(patient(study), "patient"),
      cell(study.accession),
      cell(study.modalities.join(", ")),
      cell(description(study), "description"),
      cell(dicomDate(study.studyDate), "nowrap"),
      cell(t("worklist.images", { series: study.series, instances: study.instances }), "number"),
      cell(reading.badge("status", study.status)),
      cell(assignee(study)),
      cell(study.reportStatus ? t("status." + study.reportStatus) : ""),
      cell(dateTime(study.arrival, "short"), "nowrap"),
      cell(action(study), "actions"),
    );
    return tr;
  }

  function focused() {
    const active = document.activeElement;
    const tr = active && active.closest("tbody tr");
    return tr ? { id: tr.dataset.id, action: active.dataset.action || null } : null;
  }

  function restore(focus) {
    const tr = focus && rows.querySelector('tr[data-id="' + CSS.escape(focus.id) + '"]');
    if (tr) {
      const button = focus.action && tr.querySelector('[data-action="' + focus.action + '"]');
      (button || tr).focus({ preventScroll: true });
    }
  }

  function render(listing) {
    const key = JSON.stringify(listing);
    if (key === shown) {
      return;
    }
    shown = key;
    const focus = focused();
    studies = new Map(listing.studies.map((study) => [study.id, study]));
    rows.replaceChildren(...listing.studies.map(row));
    restore(focus);
    document.getElementById("empty").hidden = listing.studies.length > 0;
    const first = listing.total ? listing.offset + 1 : 0;
    const last = listing.offset + listing.studies.length;
    document.getElementById("range").textContent = t("worklist.range", {
      first: first,
      last: last,
      total: listing.total,
    });
    document.getElementById("previous").disabled = listing.offset === 0;
    document.getElementById("next").disabled = last >= listing.total;
    const sort = address().get("sort") || "";
    for (const th of table.querySelectorAll("th[data-sort]")) {
      const column = th.dataset.sort;
      th.querySelector("button").disabled = !listing.sortable.includes(column);
      const order = sort === column ? "ascending" : sort === "-" + column ? "descending" : "none";
      th.setAttribute("aria-sort", order);
    }
  }

  function open(studyId) {
    window.location.assign(reading.studyPage(studyId));
  }

  async function claimOrRelease(button, studyId) {
    const claiming = button.dataset.action === "claim";
    button.disabled = true; // which takes the focus away: given back to the row's new button
    try {
      await (claiming ? reading.claim : reading.release)(studyId);
      show("");
    } catch (error) {
      show(reading.refusal(error));
    }
    shown = ""; // redrawn even when a refusal left the list as it was
    await load();
    restore({ id: studyId, action: claiming ? "release" : "claim" });
  }

  function page(step) {
    const params = address();
    const offset = Math.max(0, Number(params.get("offset") || 0) + step * PAGE);
    if (offset) {
      params.set("offset", offset);
    } else {
      params.delete("offset");
    }
    go(params);
  }

  rows.addEventListener("click", function (event) {
    const tr = event.target.closest("tr");
    const button = event.target.closest("button[data-action]");
    if (button) {
      claimOrRelease(button, tr.dataset.id);
    } else if (tr && studies.has(tr.dataset.id)) {
      open(tr.dataset.id);
    }
  });
  rows.addEventListener("keydown", function (event) {
    const tr = event.target;
    if (tr.tagName !== "TR") {
      return; // a button in the row: its own keys
    }
    const next = { ArrowDown: tr.nextElementSibling, ArrowUp: tr.previousElementSibling };
    if (event.key === "Enter") {
      open(tr.dataset.id);
    } else if (event.key in next) {
      event.preventDefault();
      if (next[event.key]) {
        next[event.key].focus();
      }
    }
  });
  table.querySelector("thead").addEventListener("click", function (event) {
    const th = event.target.closest("th[data-sort]");
    if (!th || !event.target.closest("button")) {
      return;
    }
    const params = address();
    const column = th.dataset.sort;
    params.set("sort", params.get("sort") === column ? "-" + column : column);
    params.delete("offset");
    go(params);
  });
  form.addEventListener("input", function () {
    clearTimeout(typing);
    typing = setTimeout(applyForm, TYPING_MS);
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    clearTimeout(typing);
    applyForm();
  });
  form.addEventListener("reset", () => setTimeout(applyForm)); // once the fields are empty
  document.getElementById("previous").addEventListener("click", () => page(-1));
  document.getElementById("next").addEventListener("click", () => page(1));
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden) {
      load();
    }
  });

  window.hounsfieldI18n.ready
    .then(reading.header)
    .then(function (account) {
      user = account;
      fillForm();
      return load();
    })
    .catch((error) => show(error.message));
})();
