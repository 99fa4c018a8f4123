// The audit trail, for admins: its entries newest first, filtered (user, action, patient or
// study, outcome, address, time range) and paged by the server (GET /api/audit: a page at a
// time, never the whole trail), each entry's details on demand; the chain verified (GET
// /api/audit/verify) with a jump to the first entry that does not hold; the filtered entries
// exported as CSV (GET /api/audit/export.csv, itself an audited act). A patient is found by
// name or ID among the stored studies (Orthanc's /tools/find) and filtered by their
// StudyInstanceUIDs. The filters live in the address, so a view can be reloaded or shared.
(function () {
  "use strict";
  const { api } = window.hounsfieldSession;
  const i18n = window.hounsfieldI18n;
  const { t, dateTime } = i18n;
  const { element, show, reason } = window.hounsfieldAdmin;
  const $ = (id) => document.getElementById(id);
  // The actions the application records (the filter's suggestions, and their words).
  const ACTIONS = [
    "auth.login",
    "auth.logout",
    "auth.refresh",
    "access.denied",
    "patient.search",
    "patient.view",
    "study.view",
    "study.store",
    "instance.store",
    "study.correct",
    "patient.update",
    "patient.merge",
    "order.place",
    "order.cancel",
    "worklist.query",
    "finding.review",
    "user.create",
    "user.update",
    "user.delete",
    "user.password",
    "user.totp",
    "key.create",
    "key.revoke",
    "audit.export",
  ];
  const OUTCOMES = ["allowed", "denied", "refused"]; // refused: an object the intake turned away
  const MAX_STUDIES = 100; // what GET /api/audit takes in one ``study`` filter
  const MAX_EXPORT = 100000; // the most rows one export holds (the newest)
  const COLUMNS = 8;
  const form = $("filters");
  const state = {
    query: {}, // the API's filters: user, action, study, outcome, ip, since, until
    applied: {}, // the form's values they came from (the address keeps them)
    nothing: false, // the patient asked for has no stored study: no entry can match
    limit: 50,
    offset: 0,
    total: 0,
    entries: [],
    open: new Set(), // the entries whose details are shown
    brokenAt: null, // the first entry that does not verify, once verified
    highlight: null, // the entry jumped to
  };
  let ticket = 0; // the latest listing asked for: older answers are dropped

  const number = (value) => Number(value).toLocaleString(i18n.language);

  // A time to the second (entries come seconds apart), as dateTime writes it otherwise: in
  // the browser's variant of the page's language.
  function stamp(iso) {
    if (!iso) return "";
    const browser = navigator.languages || [navigator.language];
    const locale = browser.find((tag) => tag.split("-")[0] === i18n.language) || i18n.language;
    try {
      return new Date(iso).toLocaleString(locale, { dateStyle: "medium", timeStyle: "medium" });
    } catch (error) {
      return dateTime(iso);
    }
  }

  // A word of the catalogue, or ``fallback`` where it has none (an action added later).
  function word(key, fallback) {
    const text = t(key);
    return text === key ? fallback : text;
  }

  function actionName(action) {
    return word("admin.audit.action." + action, "");
  }

  function roleName(role) {
    return role ? word("role." + role, role) : "";
  }

  // The browser's wall clock (<input type=datetime-local>) as the API's UTC timestamps,
  // written as they are stored ("…+00:00"), since they are compared as text.
  function utc(local, extraMs) {
    const date = new Date(local);
    if (Number.isNaN(date.getTime())) return "";
    return new Date(date.getTime() + (extraMs || 0)).toISOString().replace("Z", "+00:00");
  }

  // -- the filters ----------------------------------------------------------------------

  function formValues() {
    return {
      user: $("filter-user").value.trim().toLowerCase(), // user names are stored lower-case
      action: $("filter-action").value.trim(),
      by: $("filter-subject-by").value,
      subject: $("filter-subject").value.trim(),
      outcome: $("filter-outcome").value,
      ip: $("filter-ip").value.trim(),
      since: $("filter-since").value,
      until: $("filter-until").value,
    };
  }

  function fillForm(values) {
    $("filter-user").value = values.user || "";
    $("filter-action").value = values.action || "";
    $("filter-subject-by").value = ["name", "id", "study"].includes(values.by) ? values.by : "name";
    $("filter-subject").value = values.subject || "";
    const outcome = OUTCOMES.includes(values.outcome) ? values.outcome : "";
    $("filter-outcome").value = outcome;
    $("filter-ip").value = values.ip || "";
    $("filter-since").value = values.since || "";
    $("filter-until").value = values.until || "";
    const size = String(values.limit || state.limit);
    if ([...$("page-size").options].some((option) => option.value === size)) {
      $("page-size").value = size;
    }
  }

  // Where the view is, in the address (replaced, not pushed: paging is not navigation).
  function remember() {
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries(state.applied)) {
      const useless = name === "by" && (value === "name" || !state.applied.subject);
      if (value && !useless) query.set(name, value);
    }
    if (state.limit !== 50) query.set("limit", state.limit);
    if (state.offset) query.set("offset", state.offset);
    const search = query.toString();
    window.history.replaceState(null, "", search ? "?" + search : window.location.pathname);
  }

  function subjectNote(text, warn) {
    const note = $("subject-note");
    note.textContent = text || "";
    note.classList.toggle("warn", Boolean(warn));
    note.hidden = !text;
  }

  function patientLabel(tags) {
    const name = (tags.PatientName || "").replace(/\^+/g, " ").trim();
    return [name, tags.PatientID].filter(Boolean).join(" · ") || "?";
  }

  // The patient named (their name, a part of it, or their ID) as StudyInstanceUIDs, from the
  // studies stored now; the note under the filters says what was found.
  async function patientStudies(by, term) {
    const wildcard = /[*?]/.test(term);
    const query =
      by === "name"
        ? { PatientName: wildcard ? term : "*" + term + "*" }
        : { PatientID: term };
    const studies = await api("/tools/find", {
      method: "POST",
      json: { Level: "Study", Expand: true, Limit: MAX_STUDIES, Query: query },
    });
    const patients = [
      ...new Set(studies.map((study) => patientLabel(study.PatientMainDicomTags || {}))),
    ];
    const uids = studies
      .map((study) => (study.MainDicomTags || {}).StudyInstanceUID)
      .filter(Boolean);
    if (!uids.length) {
      subjectNote(t("admin.audit.subject_none", { term: term }), true);
      return null;
    }
    const shown = patients.slice(0, 5).join(", ") + (patients.length > 5 ? ", …" : "");
    let text = t("admin.audit.subject_found", {
      studies: number(uids.length),
      names: shown,
    });
    if (studies.length >= MAX_STUDIES) {
      text += " " + t("admin.audit.subject_capped", { count: MAX_STUDIES });
    }
    subjectNote(text, studies.length >= MAX_STUDIES);
    return uids;
  }

  // The form's filters as the API's, a patient resolved into their studies; false when a
  // filter cannot be used (said on the page).
  async function resolve() {
    const values = formValues();
    const query = {};
    for (const name of ["user", "action", "outcome", "ip"]) {
      if (values[name]) query[name] = values[name];
    }
    if (values.since) query.since = utc(values.since);
    // "To 14:30" includes what happened during 14:30 (the API's ``until`` is exclusive).
    if (values.until) query.until = utc(values.until, 60000);
    if (query.since && query.until && query.since >= query.until) {
      show(t("admin.audit.bad_range"));
      return false;
    }
    let nothing = false;
    subjectNote("");
    if (values.subject && values.by === "study") {
      const uids = [...new Set(values.subject.split(/[\s,;]+/).filter(Boolean))];
      if (uids.length > MAX_STUDIES) {
        show(t("admin.audit.too_many_studies", { count: MAX_STUDIES }));
        return false;
      }
      query.study = uids.join(",");
    } else if (values.subject) {
      const uids = await patientStudies(values.by, values.subject);
      if (uids) query.study = uids.join(",");
      else nothing = true;
    }
    state.query = query;
    state.applied = values;
    state.nothing = nothing;
    return true;
  }

  function apiQuery(extra) {
    return new URLSearchParams({ ...state.query, ...(extra || {}) });
  }

  async function apply() {
    show("");
    state.limit = Number($("page-size").value) || 50;
    try {
      if (!(await resolve())) return;
    } catch (error) {
      show(t("admin.audit.subject_failed", { error: reason(error) }));
      return;
    }
    state.offset = 0;
    state.highlight = null;
    await load();
  }

  // -- the entries ----------------------------------------------------------------------

  async function load() {
    const mine = ++ticket;
    remember();
    if (state.nothing) {
      state.total = 0;
      state.entries = [];
      render();
      return;
    }
    $("loading").hidden = state.entries.length > 0;
    try {
      const page = apiQuery({ limit: state.limit, offset: state.offset });
      const answer = await api("/api/audit?" + page);
      if (mine !== ticket) return;
      if (!answer.entries.length && answer.total > 0 && state.offset > 0) {
        // Past the end (the address said so): the last page instead.
        state.offset = Math.floor((answer.total - 1) / state.limit) * state.limit;
        return load();
      }
      state.total = answer.total;
      state.entries = answer.entries;
      render();
    } catch (error) {
      if (mine === ticket) show(reason(error));
    } finally {
      if (mine === ticket) $("loading").hidden = true;
    }
  }

  function cell(content, className) {
    const td = element("td", className);
    if (content instanceof Node) td.append(content);
    else if (Array.isArray(content)) td.append(...content.filter(Boolean));
    else td.textContent = content || "";
    return td;
  }

  function outcomeBadge(outcome) {
    const kind = { allowed: "good", denied: "bad", refused: "bad" }[outcome] || "";
    return element("span", "badge " + kind, word("admin.audit.outcome." + outcome, outcome));
  }

  function short(uid) {
    return uid.length > 28 ? "…" + uid.slice(-26) : uid;
  }

  function entryRow(entry) {
    const row = element("tr", "entry");
    row.id = "entry-" + entry.id;
    row.dataset.entry = entry.id;
    row.classList.toggle("outcome-denied", entry.outcome === "denied");
    row.classList.toggle("highlight", entry.id === state.highlight);
    row.classList.toggle("broken", entry.id === state.brokenAt);

    const time = element("time", "", stamp(entry.at));
    time.dateTime = entry.at;
    time.title = entry.at;

    const who = entry.username
      ? [
          element("span", "user", entry.username),
          entry.role && element("small", "", roleName(entry.role)),
        ]
      : [element("span", "nobody", t("admin.audit.nobody"))];

    const name = actionName(entry.action);
    const action = [
      name && element("span", "action-name", name),
      element("code", "action", entry.action),
    ];

    const outcome = [outcomeBadge(entry.outcome)];
    if (entry.id === state.brokenAt) {
      outcome.push(element("span", "badge bad", t("admin.audit.breaks_here")));
    }

    const where = [];
    if (entry.resource) {
      const resource = element("span", "resource", entry.resource);
      resource.title = entry.resource;
      where.push(resource);
    }
    if (entry.studyInstanceUid) {
      const uid = short(entry.studyInstanceUid);
      const study = element("small", "study", t("admin.audit.study_short", { uid: uid }));
      study.title = entry.studyInstanceUid;
      where.push(study);
    }

    const toggle = element("button", "quiet small toggle", t("admin.audit.details"));
    toggle.type = "button";
    toggle.setAttribute("aria-expanded", String(state.open.has(entry.id)));
    toggle.setAttribute("aria-controls", "detail-" + entry.id);
    toggle.setAttribute("aria-label", t("admin.audit.details_of", { id: entry.id }));
    toggle.addEventListener("click", () => toggleDetails(entry.id));

    row.append(
      cell("#" + entry.id, "id"),
      cell(time, "time"),
      cell(who, "who"),
      cell(action),
      cell(outcome, "outcome"),
      cell(where, "where"),
      cell(entry.ip || "", "ip"),
      cell(toggle, "more"),
    );
    return row;
  }

  function fact(list, label, value, className) {
    if (value === null || value === undefined || value === "") return;
    const dd = element("dd", className);
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    list.append(element("dt", "", label), dd);
  }

  function narrowButton(text, apply) {
    const button = element("button", "quiet small", text);
    button.type = "button";
    button.addEventListener("click", apply);
    return button;
  }

  function detailRow(entry) {
    const row = element("tr", "detail-row");
    row.id = "detail-" + entry.id;
    row.hidden = !state.open.has(entry.id);
    row.classList.toggle("broken", entry.id === state.brokenAt);
    const td = element("td");
    td.colSpan = COLUMNS;
    const box = element("div", "entry-detail");
    box.setAttribute("role", "group");
    box.setAttribute("aria-label", t("admin.audit.details_of", { id: entry.id }));

    const facts = element("dl", "facts");
    fact(facts, t("admin.audit.fact.entry"), "#" + entry.id);
    const at = t("admin.audit.at_value", { local: stamp(entry.at), utc: entry.at });
    fact(facts, t("admin.audit.fact.at"), at);
    fact(facts, t("admin.audit.fact.user"), entry.username || t("admin.audit.nobody"));
    fact(facts, t("admin.audit.fact.role"), roleName(entry.role));
    fact(facts, t("admin.audit.fact.ip"), entry.ip);
    const name = actionName(entry.action);
    const action = name ? name + " (" + entry.action + ")" : entry.action;
    fact(facts, t("admin.audit.fact.action"), action);
    fact(facts, t("admin.audit.fact.outcome"), outcomeBadge(entry.outcome));
    fact(facts, t("admin.audit.fact.resource"), entry.resource, "code");
    fact(facts, t("admin.audit.fact.study"), entry.studyInstanceUid, "code");
    fact(facts, t("admin.audit.fact.hash"), entry.hash, "code hash");

    const detail = entry.detail && Object.keys(entry.detail).length ? entry.detail : null;
    const heading = element("h3", "", t("admin.audit.fact.detail"));
    const body = detail
      ? element("pre", "json", JSON.stringify(detail, null, 2))
      : element("p", "empty", t("admin.audit.no_detail"));

    const narrow = element("div", "narrow-down");
    if (entry.username) {
      narrow.append(narrowButton(t("admin.audit.only_user", { user: entry.username }), function () {
        $("filter-user").value = entry.username;
        apply();
      }));
    }
    if (entry.studyInstanceUid) {
      narrow.append(narrowButton(t("admin.audit.only_study"), function () {
        $("filter-subject-by").value = "study";
        $("filter-subject").value = entry.studyInstanceUid;
        apply();
      }));
    }
    box.append(facts, heading, body);
    if (narrow.childElementCount) box.append(narrow);
    td.append(box);
    row.append(td);
    return row;
  }

  function toggleDetails(id) {
    const open = !state.open.has(id);
    if (open) state.open.add(id);
    else state.open.delete(id);
    $("detail-" + id).hidden = !open;
    $("entry-" + id).querySelector(".toggle").setAttribute("aria-expanded", String(open));
  }

  function render() {
    const active = document.activeElement;
    const focused = active && active.closest("#rows tr");
    const refocus = focused && focused.id;
    $("rows").replaceChildren(
      ...state.entries.flatMap((entry) => [entryRow(entry), detailRow(entry)]),
    );
    $("no-entries").hidden = state.entries.length > 0;
    const first = state.total ? state.offset + 1 : 0;
    const last = state.offset + state.entries.length;
    $("counts").textContent = state.total
      ? t("admin.audit.counts", {
          first: number(first),
          last: number(last),
          total: number(state.total),
        })
      : t("admin.audit.counts_none");
    const pages = Math.max(1, Math.ceil(state.total / state.limit));
    const page = Math.floor(state.offset / state.limit) + 1;
    const pageOf = t("admin.audit.page_of", { page: number(page), pages: number(pages) });
    $("page-of").textContent = pageOf;
    $("page-of-bottom").textContent = pageOf;
    const atStart = state.offset === 0;
    const atEnd = last >= state.total;
    for (const id of ["first", "previous", "previous-bottom"]) $(id).disabled = atStart;
    for (const id of ["next", "next-bottom"]) $(id).disabled = atEnd;
    // A pager's button pressed to the first or last page: the focus stays in the pager.
    const pressed = active && active.disabled && active.closest(".pager");
    if (pressed) {
      const left = [...pressed.querySelectorAll("button:not(:disabled)")];
      const other = active.id.startsWith("next") ? left[left.length - 1] : left[0];
      if (other) other.focus();
    }
    for (const pager of document.querySelectorAll(".pager")) {
      pager.hidden = state.total <= state.limit && atStart;
    }
    $("export").disabled = state.total === 0;
    if (refocus && $(refocus)) {
      const again = $(refocus).querySelector("button");
      if (again) again.focus();
    }
  }

  function turn(offset) {
    state.offset = Math.max(0, offset);
    state.highlight = null;
    return load();
  }

  // -- verification ---------------------------------------------------------------------

  async function verify() {
    const button = $("verify");
    button.disabled = true;
    $("verification").hidden = false;
    $("verification").className = "verification";
    $("verdict").textContent = t("admin.audit.verifying");
    $("verdict-detail").textContent = "";
    $("show-broken").hidden = true;
    try {
      const answer = await api("/api/audit/verify");
      const holds = answer.valid === true;
      state.brokenAt = holds ? null : answer.brokenAt;
      $("verification").classList.add(holds ? "holds" : "breaks");
      const badge = element("span", "badge " + (holds ? "good" : "bad"),
        t(holds ? "admin.audit.chain_ok" : "admin.audit.chain_broken"));
      const text = holds
        ? t("admin.audit.chain_holds", { count: number(answer.entries) })
        : t("admin.audit.chain_breaks", { id: answer.brokenAt });
      $("verdict").replaceChildren(badge, " ", element("span", "verdict-text", text));
      if (holds) {
        $("verdict-detail").replaceChildren(
          t("admin.audit.chain_head") + " ",
          element("code", "hash", answer.head),
        );
      } else {
        $("verdict-detail").textContent = t("admin.audit.chain_breaks_detail", {
          count: number(answer.entries),
        });
        $("show-broken").textContent = t("admin.audit.show_entry", { id: answer.brokenAt });
        $("show-broken").hidden = false;
      }
      render();
    } catch (error) {
      $("verdict").textContent = t("admin.audit.verify_failed", { error: reason(error) });
    } finally {
      button.disabled = false;
    }
  }

  // The offset of entry ``id`` in the whole trail (newest first), found with pages of one:
  // where its id says it is (ids have no gaps unless rows were removed), else by halving.
  async function positionOf(id) {
    async function idAt(offset) {
      const answer = await api("/api/audit?" + new URLSearchParams({ limit: 1, offset: offset }));
      return { id: answer.entries.length ? answer.entries[0].id : null, total: answer.total };
    }
    const top = await idAt(0);
    if (top.id === null || top.id < id) return null;
    const guess = top.id - id;
    if (guess < top.total && (await idAt(guess)).id === id) return guess;
    let low = 0;
    let high = top.total - 1;
    while (low <= high) {
      const middle = Math.floor((low + high) / 2);
      const found = (await idAt(middle)).id;
      if (found === id) return middle;
      if (found !== null && found > id) low = middle + 1;
      else high = middle - 1;
    }
    return null;
  }

  // The entry that breaks the chain, on its page of the whole trail, opened and focused.
  async function showEntry(id) {
    show("");
    fillForm({ limit: state.limit });
    subjectNote("");
    state.query = {};
    state.applied = {};
    state.nothing = false;
    try {
      const position = await positionOf(id);
      if (position === null) {
        show(t("admin.audit.entry_missing", { id: id }));
        return;
      }
      state.offset = Math.floor(position / state.limit) * state.limit;
    } catch (error) {
      show(reason(error));
      return;
    }
    state.open.add(id);
    state.highlight = id;
    await load();
    const row = $("entry-" + id);
    if (row) {
      row.scrollIntoView({ block: "center" });
      row.querySelector(".toggle").focus({ preventScroll: true });
    }
  }

  // -- export ---------------------------------------------------------------------------

  function fileName(response) {
    const disposition = response.headers.get("Content-Disposition") || "";
    const found = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
    return found ? decodeURIComponent(found[1]) : "audit-trail.csv";
  }

  // Fetched rather than followed, so that a refusal shows here instead of replacing the page.
  async function exportCsv() {
    const button = $("export");
    button.disabled = true;
    show("");
    try {
      const response = await fetch("/api/audit/export.csv?" + apiQuery(), {
        credentials: "same-origin",
      });
      if (!response.ok) {
        const answer = await response.json().catch(() => ({}));
        throw new Error(answer.error || "HTTP " + response.status);
      }
      const name = fileName(response);
      const url = URL.createObjectURL(await response.blob());
      const link = element("a");
      link.href = url;
      link.download = name;
      link.hidden = true;
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60000);
      const capped = state.total > MAX_EXPORT;
      show(
        capped
          ? t("admin.audit.exported_capped", {
              file: name,
              rows: number(MAX_EXPORT),
              total: number(state.total),
            })
          : t("admin.audit.exported", { file: name }),
        true,
      );
      // The export is itself recorded: on the newest page it shows (when the filters take it).
      if (state.offset === 0) await load();
    } catch (error) {
      show(t("admin.audit.export_failed", { error: reason(error) }));
    } finally {
      button.disabled = state.total === 0;
    }
  }

  // -- the page -------------------------------------------------------------------------

  function suggestActions() {
    $("actions").replaceChildren(
      ...ACTIONS.map(function (action) {
        const option = element("option");
        option.value = action;
        option.label = actionName(action);
        return option;
      }),
    );
  }

  async function start() {
    try {
      await window.hounsfieldAdmin.start("audit");
    } catch (error) {
      show(reason(error));
      return;
    }
    suggestActions();
    const address = Object.fromEntries(new URLSearchParams(window.location.search));
    fillForm(address);
    state.limit = Number($("page-size").value) || 50;
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      apply();
    });
    $("clear").addEventListener("click", function () {
      fillForm({ limit: state.limit });
      apply();
    });
    $("page-size").addEventListener("change", apply);
    $("first").addEventListener("click", () => turn(0));
    $("previous").addEventListener("click", () => turn(state.offset - state.limit));
    $("next").addEventListener("click", () => turn(state.offset + state.limit));
    $("previous-bottom").addEventListener("click", () => turn(state.offset - state.limit));
    $("next-bottom").addEventListener("click", () => turn(state.offset + state.limit));
    $("verify").addEventListener("click", verify);
    $("export").addEventListener("click", exportCsv);
    $("show-broken").addEventListener("click", () => showEntry(state.brokenAt));
    show("");
    try {
      if (!(await resolve())) return;
    } catch (error) {
      show(t("admin.audit.subject_failed", { error: reason(error) }));
      return;
    }
    const offset = Math.max(0, Number(address.offset) || 0);
    state.offset = Math.floor(offset / state.limit) * state.limit;
    await load();
  }

  start();
})();
