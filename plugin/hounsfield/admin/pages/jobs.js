// The jobs page: the job queue, newest first, filtered by kind and state (kept in the
// address, so a reload or a shared link shows the same); each job's state as a badge, a
// running job's progress, a failed one's error and attempts, its parameters and result in
// a collapsible "Details". Admins cancel a queued or running job and retry a failed or
// cancelled one (the API says when a kind may not be retried). The list refreshes itself
// every few seconds; rows are updated in place, so focus, open details and the scroll
// position stay as they were.
(function () {
  "use strict";
  const { api } = window.hounsfieldSession;
  const i18n = window.hounsfieldI18n;
  const t = i18n.t;
  const { element, show, reason, number, duration } = window.hounsfieldAdmin;
  const REFRESH_MS = 2000;
  const PAGE = 25;
  const STATES = ["queued", "running", "failed", "succeeded", "cancelled"];
  const BADGES = { queued: "", running: "info", succeeded: "good", failed: "bad", cancelled: "warn" };
  const $ = (id) => document.getElementById(id);

  const filters = { kind: "", state: "", offset: 0 };
  const rows = new Map(); // job id -> { row, cells, drawn: {cell name: what it shows} }
  const kinds = new Set(); // the kinds the menu offers: the API's, and any seen in the list
  let submittable = null; // the kinds that may be retried (null: not known, the API decides)
  let loads = 0; // the latest load: an older answer arriving late is dropped
  let timer = null;
  let failing = false; // the message shown is the list's own failure (cleared once it loads)

  // -- words and figures -----------------------------------------------------------------

  function percent(value) {
    return new Intl.NumberFormat(i18n.language, { style: "percent" }).format(value / 100);
  }

  function between(start, end) {
    return start && end ? duration((Date.parse(end) - Date.parse(start)) / 1000) : "";
  }

  function stateBadge(job) {
    const badge = element("span", ("badge " + (BADGES[job.state] || "")).trim(),
                          t("admin.jobs.state." + job.state));
    badge.dataset.state = job.state;
    return badge;
  }

  function gist(text) {
    const line = String(text || "").trim().split("\n").pop(); // a traceback ends with the error
    return line.length > 240 ? line.slice(0, 239) + "…" : line;
  }

  function pretty(value) {
    return JSON.stringify(value, null, 2);
  }

  // -- one row per job, updated in place -------------------------------------------------

  // Replace what ``cell`` shows when ``key`` (what it would show) changed; focus inside it
  // goes to the new control doing the same thing, else to the row.
  function fill(entry, name, key, build) {
    if (entry.drawn[name] === key) return;
    entry.drawn[name] = key;
    const cell = entry.cells[name];
    const focused = cell.contains(document.activeElement) ? document.activeElement : null;
    cell.replaceChildren(...build());
    if (focused) {
      const again = focused.dataset.action &&
        cell.querySelector('[data-action="' + focused.dataset.action + '"]');
      (again || entry.row).focus();
    }
  }

  function newRow(id) {
    const row = element("tr");
    row.dataset.job = id;
    row.tabIndex = -1; // where focus goes when the button pressed goes away
    const cells = {};
    for (const name of ["id", "kind", "state", "progress", "attempts", "created", "outcome",
                        "actions"]) {
      cells[name] = element("td", name);
      row.append(cells[name]);
    }
    // The outcome's details stay the same element: open, they stay open at each refresh.
    const summary = element("div", "summary-line");
    const details = element("details");
    const label = element("summary", "", t("admin.jobs.details"));
    const body = element("dl", "facts");
    details.append(label, body);
    cells.outcome.append(summary, details);
    return { row, cells, summary, details, label, body, drawn: {} };
  }

  function progressCell(job) {
    if (job.state !== "running") {
      return [element("span", "none", "—")];
    }
    const bar = element("progress");
    bar.max = 100;
    bar.value = job.progress;
    bar.setAttribute("aria-label", t("admin.jobs.progress_of", { id: job.id }));
    return [bar, element("span", "percent", percent(job.progress))];
  }

  function summaryLine(job) {
    if (job.state === "failed" || (job.state === "cancelled" && job.error)) {
      const error = element("p", "error", gist(job.error) || t("admin.jobs.no_error"));
      error.title = job.error || "";
      return [error];
    }
    const said = job.message ? [element("p", "said", job.message)] : [];
    if (job.state === "succeeded") {
      const took = between(job.startedAt, job.finishedAt);
      return [...said, element("p", "took", took ? t("admin.jobs.took", { duration: took }) : "")];
    }
    if (job.state === "queued") {
      return [...said, element("p", "took", t("admin.jobs.waiting"))];
    }
    if (job.state === "running" && !job.message) {
      return [element("p", "took", t("admin.jobs.running_since", {
        time: i18n.clock(job.startedAt) }))];
    }
    if (job.state === "cancelled") {
      return job.finishedAt
        ? [element("p", "took", t("admin.jobs.cancelled_at", {
            time: i18n.dateTime(job.finishedAt, "short") }))]
        : [];
    }
    return said;
  }

  function facts(job) {
    const items = [];
    function fact(label, value, pre) {
      if (value === null || value === undefined || value === "") return;
      const term = element("dt", "", t(label));
      const text = element(pre ? "pre" : "dd", pre ? "json" : "", value);
      if (pre) {
        const holder = element("dd");
        holder.append(text);
        items.push(term, holder);
      } else {
        items.push(term, text);
      }
    }
    fact("admin.jobs.fact.error", job.error, true);
    fact("admin.jobs.fact.message", job.message);
    fact("admin.jobs.fact.params", pretty(job.params || {}), true);
    fact("admin.jobs.fact.result", job.result === null ? null : pretty(job.result), true);
    fact("admin.jobs.fact.priority", number(job.priority || 0));
    fact("admin.jobs.fact.worker", job.worker);
    fact("admin.jobs.fact.created", i18n.dateTime(job.createdAt));
    fact("admin.jobs.fact.started", i18n.dateTime(job.startedAt));
    fact("admin.jobs.fact.finished", i18n.dateTime(job.finishedAt));
    fact("admin.jobs.fact.duration", between(job.startedAt, job.finishedAt));
    fact("admin.jobs.fact.updated", i18n.dateTime(job.updatedAt));
    return items;
  }

  function actionButton(action, job, className) {
    const button = element("button", className, t("admin.jobs." + action));
    button.type = "button";
    button.dataset.action = action;
    button.dataset.job = job.id;
    button.setAttribute("aria-label", t("admin.jobs." + action + "_job", { id: job.id }));
    return button;
  }

  function actions(job) {
    if ((job.state === "queued" || job.state === "running") && !job.cancelRequested) {
      return [actionButton("cancel", job, "small danger")];
    }
    const again = submittable === null || submittable.has(job.kind);
    if ((job.state === "failed" || job.state === "cancelled") && again) {
      return [actionButton("retry", job, "small quiet")];
    }
    return [];
  }

  function update(entry, job) {
    fill(entry, "id", job.id, () => [element("span", "number", "#" + job.id)]);
    fill(entry, "kind", job.kind, () => [element("code", "", job.kind)]);
    fill(entry, "state", job.state + job.cancelRequested, function () {
      const badges = [stateBadge(job)];
      if (job.cancelRequested && !["cancelled", "failed", "succeeded"].includes(job.state)) {
        badges.push(element("span", "badge warn", t("admin.jobs.cancelling")));
      }
      return badges;
    });
    fill(entry, "progress", job.state + ":" + job.progress, () => progressCell(job));
    fill(entry, "attempts", job.attempts + "/" + job.maxAttempts, function () {
      const text = element("span", "", t("admin.jobs.attempts_of", {
        attempts: number(job.attempts), max: number(job.maxAttempts) }));
      if (job.state === "failed" && job.attempts >= job.maxAttempts) text.className = "spent";
      return [text];
    });
    fill(entry, "created", job.createdAt, function () {
      const time = element("time", "", i18n.dateTime(job.createdAt, "short"));
      time.dateTime = job.createdAt;
      return [time];
    });
    const retryable = submittable === null || submittable.has(job.kind);
    fill(entry, "actions", [job.state, job.cancelRequested, retryable].join(), () => actions(job));
    const key = JSON.stringify(job);
    if (entry.drawn.outcome !== key) {
      entry.drawn.outcome = key;
      entry.summary.replaceChildren(...summaryLine(job));
      entry.body.replaceChildren(...facts(job));
      entry.label.setAttribute("aria-label", t("admin.jobs.details_of", { id: job.id }));
    }
  }

  function render(listing) {
    const tbody = $("rows");
    const shown = new Set();
    listing.jobs.forEach(function (job, index) {
      shown.add(job.id);
      let entry = rows.get(job.id);
      if (!entry) {
        entry = newRow(job.id);
        rows.set(job.id, entry);
      }
      update(entry, job);
      // Moved only when out of place: a row moved loses the focus inside it.
      if (tbody.children[index] !== entry.row) {
        tbody.insertBefore(entry.row, tbody.children[index] || null);
      }
    });
    for (const [id, entry] of rows) {
      if (!shown.has(id)) {
        entry.row.remove();
        rows.delete(id);
      }
    }
    for (const job of listing.jobs) kinds.add(job.kind);
    kindMenu();
    const total = listing.total;
    $("summary").textContent = t("admin.jobs.count", { count: number(total) });
    $("none").hidden = listing.jobs.length > 0;
    $("jobs").hidden = listing.jobs.length === 0;
    const first = total ? listing.offset + 1 : 0;
    const last = listing.offset + listing.jobs.length;
    $("range").textContent = t("admin.jobs.range", {
      first: number(first), last: number(last), total: number(total) });
    $("previous").disabled = listing.offset === 0;
    $("next").disabled = last >= total;
    $("updated").textContent = t("admin.jobs.updated", { time: i18n.clock(new Date().toISOString()) });
  }

  // -- loading, live -------------------------------------------------------------------

  function schedule() {
    clearTimeout(timer);
    timer = $("live").checked ? setTimeout(load, REFRESH_MS) : null;
  }

  async function load() {
    clearTimeout(timer);
    const ticket = ++loads;
    const query = new URLSearchParams({ limit: PAGE, offset: filters.offset });
    if (filters.kind) query.set("kind", filters.kind);
    if (filters.state) query.set("state", filters.state);
    try {
      const listing = await api("/api/jobs?" + query);
      if (ticket !== loads) return;
      if (listing.total > 0 && filters.offset >= listing.total) {
        // The page shown emptied (jobs purged, a filter narrowed): its last page instead.
        filters.offset = Math.floor((listing.total - 1) / PAGE) * PAGE;
        remember();
        load();
        return;
      }
      render(listing);
      if (failing) show("");
      failing = false;
    } catch (error) {
      if (ticket !== loads) return;
      show(t("admin.jobs.load_failed", { reason: reason(error) }));
      failing = true;
    }
    schedule();
  }

  // The kinds the server knows (GET /api/jobs/kinds), and those that may be submitted
  // again (the others are queued by their own feature: no Retry); without it, those seen.
  async function loadKinds() {
    try {
      const answer = await api("/api/jobs/kinds");
      for (const kind of answer.kinds || []) kinds.add(kind);
      if (Array.isArray(answer.submittable)) submittable = new Set(answer.submittable);
    } catch (error) {
      console.warn("job kinds not listed; the menu offers those seen", error);
    }
    kindMenu();
  }

  let offered = "";
  function kindMenu() {
    if (filters.kind) kinds.add(filters.kind);
    const sorted = [...kinds].sort();
    const key = sorted.join("\n");
    if (key === offered) return;
    offered = key;
    const menu = $("kind");
    const all = menu.options[0];
    menu.replaceChildren(all, ...sorted.map((kind) => new Option(kind, kind)));
    menu.value = filters.kind;
  }

  // The filters and page in the address: a reload, or the link shared, shows the same.
  function remember() {
    const query = new URLSearchParams();
    if (filters.kind) query.set("kind", filters.kind);
    if (filters.state) query.set("state", filters.state);
    if (filters.offset) query.set("offset", filters.offset);
    const search = query.toString();
    history.replaceState(null, "", window.location.pathname + (search ? "?" + search : ""));
  }

  function recall() {
    const query = new URLSearchParams(window.location.search);
    filters.kind = query.get("kind") || "";
    filters.state = STATES.includes(query.get("state")) ? query.get("state") : "";
    filters.offset = Math.max(0, Math.floor(Number(query.get("offset")) || 0));
    $("state").value = filters.state;
    kindMenu();
  }

  // -- cancel, retry ---------------------------------------------------------------------

  async function act(button) {
    const id = Number(button.dataset.job);
    const action = button.dataset.action;
    // Not ``disabled``: a disabled button loses the focus, and the keyboard user their place.
    button.setAttribute("aria-disabled", "true");
    try {
      if (action === "cancel") {
        await api("/api/jobs/" + id + "/cancel", { method: "POST" });
        show(t("admin.jobs.cancel_sent", { id: id }), true);
      } else {
        const made = await api("/api/jobs/" + id + "/retry", { method: "POST" });
        show(t("admin.jobs.retried", { id: id, new: made.id }), true);
      }
      failing = false;
    } catch (error) {
      show(t("admin.jobs." + action + "_failed", { id: id, reason: reason(error) }));
    }
    button.removeAttribute("aria-disabled"); // usable again: a job may be retried twice
    await load();
  }

  async function start() {
    await window.hounsfieldAdmin.start("jobs");
    recall();
    $("filters").addEventListener("submit", (event) => event.preventDefault());
    $("filters").addEventListener("change", function (event) {
      if (event.target.id === "live") {
        if ($("live").checked) load();
        else schedule();
        return;
      }
      filters.kind = $("kind").value;
      filters.state = $("state").value;
      filters.offset = 0;
      remember();
      load();
    });
    $("refresh").addEventListener("click", load);
    $("previous").addEventListener("click", function () {
      filters.offset = Math.max(0, filters.offset - PAGE);
      remember();
      load();
    });
    $("next").addEventListener("click", function () {
      filters.offset += PAGE;
      remember();
      load();
    });
    $("rows").addEventListener("click", function (event) {
      const button = event.target.closest("button[data-action]");
      if (button && button.getAttribute("aria-disabled") !== "true") act(button);
    });
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && $("live").checked) load();
    });
    await loadKinds();
    await load();
  }

  start().catch((error) => show(reason(error)));
})();
