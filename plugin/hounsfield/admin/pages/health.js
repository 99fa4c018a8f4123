// The health page: every component of GET /api/health with its figures (Orthanc's runs and
// peers, the database, free disk, the worker processes, the queue's depth and oldest job,
// pending events, DICOMweb), refreshed every few seconds; and, for admins only, Orthanc's
// effective configuration (GET /api/admin/configuration, secrets masked by the server) as a
// collapsible tree that a filter narrows. Admins and the metrics role open it; the metrics
// role sees no configuration and no link to the jobs page (neither is theirs).
(function () {
  "use strict";
  const { api } = window.hounsfieldSession;
  const i18n = window.hounsfieldI18n;
  const t = i18n.t;
  const { element, show, reason, number, duration, badge } = window.hounsfieldAdmin;
  const REFRESH_MS = 5000;
  const MASK = "********";
  const JOB_STATES = ["queued", "running", "failed", "succeeded", "cancelled"];
  const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  const $ = (id) => document.getElementById(id);
  const drawn = new WeakMap(); // element -> what it shows (JSON), to leave it alone when unchanged
  const cards = new Map(); // component name -> its card's parts
  let user = null;
  let timer = null;
  let loads = 0;
  let failing = false;

  // -- words and figures -----------------------------------------------------------------

  // Bytes as people read them, in binary units as the configuration counts them
  // (MinimumFreeSpaceMB: 500 is 500 MiB): "24.1 GiB", "24,1 Gio"; the exact count in the
  // title and in data-bytes.
  function bytes(value) {
    let scaled = value;
    let unit = 0;
    while (Math.abs(scaled) >= 1024 && unit < UNITS.length - 1) {
      scaled /= 1024;
      unit += 1;
    }
    const figure = new Intl.NumberFormat(i18n.language, {
      maximumFractionDigits: unit === 0 || Math.abs(scaled) >= 100 ? 0 : 1,
    }).format(scaled);
    const shown = element("span", "bytes", t("admin.health.unit." + UNITS[unit], { value: figure }));
    shown.title = t("admin.health.bytes_exact", { bytes: number(value) });
    shown.dataset.bytes = String(value);
    return shown;
  }

  function healthBadge(healthy) {
    return healthy
      ? badge("good", t("admin.health.healthy"))
      : badge("bad", t("admin.health.unhealthy"));
  }

  function code(text) {
    return element("code", "", text);
  }

  function yesNo(value) {
    return t(value ? "admin.health.yes" : "admin.health.no");
  }

  // Replace what ``container`` shows when ``value`` changed; focus inside it goes to the
  // element marked with the same data-focus, if there is one again.
  function patch(container, value, build) {
    const key = JSON.stringify(value);
    if (drawn.get(container) === key) return;
    drawn.set(container, key);
    const active = document.activeElement;
    const focused = container.contains(active) && active.dataset ? active.dataset.focus : null;
    container.replaceChildren(...build());
    if (focused) {
      const again = container.querySelector('[data-focus="' + focused + '"]');
      if (again) again.focus();
    }
  }

  // A small table: ``columns`` (catalogue keys), ``rows`` (cells: text or nodes).
  function table(caption, columns, rows) {
    const frame = element("div", "table-frame inner");
    const made = element("table");
    made.append(element("caption", "", caption));
    const head = element("tr");
    for (const column of columns) {
      const cell = element("th", "", t(column));
      cell.scope = "col";
      head.append(cell);
    }
    made.createTHead().append(head);
    const body = made.createTBody();
    for (const row of rows) {
      const line = element("tr");
      for (const value of row) {
        const cell = element("td");
        if (value instanceof Node) cell.append(value);
        else cell.textContent = value === null || value === undefined ? "" : String(value);
        line.append(cell);
      }
      body.append(line);
    }
    frame.append(made);
    return frame;
  }

  // -- each component's figures ----------------------------------------------------------
  // [catalogue key, value (text or node), field name] for the figures' list; the fields
  // named are consumed, and any other field the server adds is still shown, as it is.

  function orthancFigures(c) {
    return [
      ["admin.health.orthanc.node", code(c.node), "node"],
      ["admin.health.orthanc.started", i18n.dateTime(c.startedAt), "startedAt"],
      ["admin.health.orthanc.starts", number(c.starts), "starts"],
      ["admin.health.orthanc.unclean", c.uncleanStops
        ? badge("warn", number(c.uncleanStops)) : number(c.uncleanStops || 0), "uncleanStops"],
      ["admin.health.orthanc.last_unclean", c.lastUncleanRunStartedAt
        ? i18n.dateTime(c.lastUncleanRunStartedAt) : t("admin.health.never"),
       "lastUncleanRunStartedAt"],
      ["admin.health.orthanc.peers", number((c.peers || []).length), "peers"],
    ];
  }

  function orthancMore(c) {
    if (!c.peers || !c.peers.length) return [];
    return [table(
      t("admin.health.orthanc.peers_caption"),
      ["admin.health.peer.node", "admin.health.peer.started", "admin.health.peer.heartbeat"],
      c.peers.map(function (peer) {
        const name = element("span", "", "");
        name.append(code(peer.node));
        if (peer.self) name.append(" ", badge("info", t("admin.health.peer.self")));
        return [name, i18n.dateTime(peer.startedAt), i18n.clock(peer.heartbeatAt)];
      }),
    )];
  }

  function databaseFigures(c) {
    const backends = { sqlite: "SQLite", postgresql: "PostgreSQL" };
    const figures = [["admin.health.database.backend", backends[c.backend] || c.backend, "backend"]];
    if (c.path !== undefined) figures.push(["admin.health.database.path", code(c.path), "path"]);
    if (c.host !== undefined) {
      figures.push(["admin.health.database.host", code(c.port ? c.host + ":" + c.port : c.host),
                    "host"]);
      figures.push(["", null, "port"]);
    }
    if (c.database !== undefined) {
      figures.push(["admin.health.database.name", code(c.database), "database"]);
    }
    if (c.schema !== undefined) {
      figures.push(["admin.health.database.schema", code(c.schema || "public"), "schema"]);
    }
    figures.push(["admin.health.database.migrations", number(c.migrations), "migrations"]);
    if (c.missingMigrations) {
      figures.push(["admin.health.database.missing",
                    badge("bad", c.missingMigrations.join(", ")), "missingMigrations"]);
    }
    return figures;
  }

  function storageFigures(c) {
    const margin = c.freeBytes - c.minimumFreeBytes;
    return [
      ["admin.health.storage.path", code(c.path), "path"],
      ["admin.health.storage.free", bytes(c.freeBytes), "freeBytes"],
      ["admin.health.storage.minimum", bytes(c.minimumFreeBytes), "minimumFreeBytes"],
      ["admin.health.storage.margin", margin >= 0 ? bytes(margin)
        : badge("bad", t("admin.health.storage.short", { missing: bytes(-margin).textContent })),
       ""],
    ];
  }

  function workersFigures(c) {
    const alive = element("span", "", "");
    alive.append(element("strong", "alive", number(c.alive)), " ",
                 t("admin.health.workers.of", { configured: number(c.configured) }));
    return [
      ["admin.health.workers.configured", element("span", "configured", number(c.configured)),
       "configured"],
      ["admin.health.workers.alive", alive, "alive"],
      ["", null, "workers"],
    ];
  }

  function workersMore(c) {
    if (!c.workers || !c.workers.length) return [];
    return [table(
      t("admin.health.workers.caption"),
      ["admin.health.worker.slot", "admin.health.worker.pid", "admin.health.worker.state",
       "admin.health.worker.restarts", "admin.health.worker.last_exit"],
      c.workers.map(function (worker) {
        const state = element("span", "badges");
        state.append(worker.alive ? badge("good", t("admin.health.worker.alive"))
                                  : badge("bad", t("admin.health.worker.stopped")));
        if (worker.crashLooping) {
          state.append(" ", badge("bad", t("admin.health.worker.crash_looping")));
        }
        return [
          number(worker.slot),
          worker.pid ? element("span", "pid", String(worker.pid)) : "—",
          state,
          number(worker.restarts || 0),
          worker.lastExit || "—",
        ];
      }),
    )];
  }

  function queueFigures(c) {
    const counts = element("span", "counts");
    for (const state of JOB_STATES) {
      if (!c.jobs || c.jobs[state] === undefined) continue;
      const words = t("admin.health.queue.state_count", {
        state: t("admin.health.queue.state." + state), count: number(c.jobs[state]) });
      let item;
      if (user && user.role === "admin") {
        item = element("a", "count", words);
        item.href = "/admin/jobs.html?state=" + state;
        item.dataset.focus = "jobs-" + state;
      } else {
        item = element("span", "count", words);
      }
      item.dataset.state = state;
      counts.append(item);
    }
    return [
      ["admin.health.queue.depth", element("strong", "depth", number(c.depth)), "depth"],
      ["admin.health.queue.running", element("span", "running", number(c.running)), "running"],
      ["admin.health.queue.oldest", element("span", "oldest", c.oldestQueuedSeconds === null ||
        c.oldestQueuedSeconds === undefined ? t("admin.health.queue.none_waiting")
        : duration(c.oldestQueuedSeconds)), "oldestQueuedSeconds"],
      ["admin.health.queue.jobs", counts, "jobs"],
    ];
  }

  function eventsFigures(c) {
    return [["admin.health.events.pending", element("span", "pending", number(c.pending)),
             "pending"]];
  }

  // Sends to other servers (the routing extension): those in flight, and each failed one
  // with its destination, failures, next attempt (or given up) and Orthanc's error.
  function routingFigures(c) {
    const policy = c.policy || {};
    return [
      ["admin.health.routing.sending", element("strong", "sending", number(c.sending)), "sending"],
      ["admin.health.routing.retrying", element("span", "retrying",
                                                number((c.retrying || []).length)), "retrying"],
      ["admin.health.routing.gave_up", (c.gaveUp || []).length
        ? badge("bad", number(c.gaveUp.length)) : number(0), "gaveUp"],
      ["admin.health.routing.policy", t("admin.health.routing.policy_value", {
        attempts: number(policy.attempts), first: duration(policy.firstDelaySeconds),
        max: duration(policy.maxDelaySeconds) }), "policy"],
    ];
  }

  function routingMore(c) {
    const failed = [
      ...(c.retrying || []).map((send) => [send, false]),
      ...(c.gaveUp || []).map((send) => [send, true]),
    ];
    if (!failed.length) return [];
    return [table(
      t("admin.health.routing.caption"),
      ["admin.health.routing.destination", "admin.health.routing.failures",
       "admin.health.routing.next", "admin.health.routing.error", "admin.health.routing.job"],
      failed.map(function ([send, gaveUp]) {
        return [
          code(send.destination),
          number(send.failures),
          gaveUp ? badge("bad", t("admin.health.routing.given_up"))
            : send.nextAttemptSeconds >= 0.5 ? duration(send.nextAttemptSeconds)
              : t("admin.health.routing.now"),
          send.error || "—",
          code(send.job),
        ];
      }),
    )];
  }

  function dicomwebFigures(c) {
    return [["admin.health.dicomweb.claimed", yesNo(c.healthy), ""]];
  }

  const COMPONENTS = {
    orthanc: [orthancFigures, orthancMore],
    database: [databaseFigures],
    storage: [storageFigures],
    workers: [workersFigures, workersMore],
    queue: [queueFigures],
    events: [eventsFigures],
    dicomweb: [dicomwebFigures],
    routing: [routingFigures, routingMore],
  };
  const SPECIAL = ["healthy", "problem", "error"];

  function figures(name, component) {
    const [known] = COMPONENTS[name] || [];
    const listed = known && !component.error ? known(component) : [];
    const consumed = new Set([...SPECIAL, ...listed.map((figure) => figure[2])]);
    const items = [];
    for (const [key, value] of listed) {
      if (!key) continue;
      items.push(element("dt", "", t(key)));
      const cell = element("dd");
      cell.dataset.figure = key.split(".").pop();
      if (value instanceof Node) cell.append(value);
      else cell.textContent = value === null || value === undefined ? "—" : String(value);
      items.push(cell);
    }
    // What the server added since this page was written: shown as it comes.
    for (const [field, value] of Object.entries(component)) {
      if (consumed.has(field)) continue;
      items.push(element("dt", "", field));
      const cell = element("dd");
      cell.dataset.figure = field;
      if (value !== null && typeof value === "object") {
        cell.append(element("pre", "json", JSON.stringify(value, null, 2)));
      } else {
        cell.textContent = value === null ? "—" : String(value);
      }
      items.push(cell);
    }
    return items;
  }

  function componentName(name) {
    const label = t("admin.health.component." + name);
    return label === "admin.health.component." + name ? name : label;
  }

  function card(name) {
    let parts = cards.get(name);
    if (parts) return parts;
    const section = element("section", "component");
    section.dataset.component = name;
    const title = element("h2");
    title.id = "component-" + name;
    section.setAttribute("aria-labelledby", title.id);
    const heading = element("span", "name", componentName(name));
    const state = element("span", "state");
    title.append(heading, state);
    const problem = element("p", "problem");
    problem.hidden = true;
    const list = element("dl", "figures");
    const more = element("div", "more");
    section.append(title, problem, list, more);
    $("components").append(section);
    parts = { section, state, problem, list, more };
    cards.set(name, parts);
    return parts;
  }

  function render(report) {
    const components = report.components || {};
    const unhealthy = Object.keys(components).filter((name) => !components[name].healthy);
    patch($("status"), [report.status, unhealthy], () => [report.status === "ok"
      ? t("admin.health.all_healthy")
      : t("admin.health.some_unhealthy", { names: unhealthy.map(componentName).join(", ") })]);
    $("status").className = "badge " + (report.status === "ok" ? "good" : "bad");
    $("overall").classList.toggle("unhealthy", report.status !== "ok");
    for (const [name, component] of Object.entries(components)) {
      const parts = card(name);
      parts.section.classList.toggle("unhealthy", !component.healthy);
      patch(parts.state, component.healthy, () => [healthBadge(component.healthy)]);
      const trouble = component.problem || component.error || "";
      parts.problem.textContent = trouble;
      parts.problem.hidden = !trouble;
      patch(parts.list, [component, i18n.language], () => figures(name, component));
      const more = (COMPONENTS[name] || [])[1];
      patch(parts.more, component, () => (more && !component.error ? more(component) : []));
    }
    for (const [name, parts] of cards) {
      if (!(name in components)) {
        parts.section.remove();
        cards.delete(name);
      }
    }
    $("checked").textContent = t("admin.health.checked", {
      time: i18n.clock(new Date().toISOString()) });
  }

  function schedule() {
    clearTimeout(timer);
    timer = $("live").checked ? setTimeout(load, REFRESH_MS) : null;
  }

  async function load() {
    clearTimeout(timer);
    const ticket = ++loads;
    try {
      let report;
      try {
        report = await api("/api/health");
      } catch (error) {
        // 503 is the report itself, saying that something is unhealthy.
        if (error.status === 503 && error.answer && error.answer.components) {
          report = error.answer;
        } else {
          throw error;
        }
      }
      if (ticket !== loads) return;
      render(report);
      if (failing) show("");
      failing = false;
    } catch (error) {
      if (ticket !== loads) return;
      show(t("admin.health.load_failed", { reason: reason(error) }));
      failing = true;
    }
    schedule();
  }

  // -- the configuration (admins) ---------------------------------------------------------

  function isScalar(value) {
    return value === null || typeof value !== "object";
  }

  function leafValue(value, masked) {
    if (masked) {
      const span = element("span", "value masked", MASK);
      span.title = t("admin.health.masked");
      const wrap = element("span", "masked-wrap");
      wrap.append(span, " ", badge("", t("admin.health.masked")));
      return wrap;
    }
    const kind = value === null ? "null" : Array.isArray(value) ? "array" : typeof value;
    return element("span", "value " + kind, JSON.stringify(value));
  }

  function branchCount(value) {
    return Array.isArray(value)
      ? t("admin.health.items", { count: number(value.length) })
      : t("admin.health.settings", { count: number(Object.keys(value).length) });
  }

  // One setting: a leaf (key: value) or a section to open (details).
  function node(key, value, path, depth) {
    const item = element("li");
    const full = path ? path + "." + key : String(key);
    item.dataset.path = full;
    const shortArray = Array.isArray(value) && value.every(isScalar) &&
      JSON.stringify(value).length <= 90;
    if (isScalar(value) || shortArray || Object.keys(value).length === 0) {
      item.className = "leaf";
      item.dataset.text = (full + " " + JSON.stringify(value)).toLowerCase();
      item.append(element("span", "key", String(key)), leafValue(value, value === MASK));
      return item;
    }
    item.className = "branch";
    item.dataset.text = full.toLowerCase();
    const details = element("details");
    details.open = depth > 0;
    const summary = element("summary");
    summary.append(element("span", "key", String(key)), element("span", "count", branchCount(value)));
    const list = element("ul");
    const entries = Array.isArray(value) ? value.map((item, index) => [index, item])
                                         : Object.entries(value);
    for (const [name, item] of entries) list.append(node(name, item, full, depth + 1));
    details.append(summary, list);
    item.append(details);
    return item;
  }

  let saved = null; // the sections' open state before a filter opened those matching

  // Show the settings whose path or value holds ``query`` (and the sections leading to them).
  function narrow(item, query, shown) {
    if (item.classList.contains("leaf")) {
      const hit = Boolean(query) && item.dataset.text.includes(query);
      item.classList.toggle("hit", hit);
      item.hidden = !(shown || hit || !query);
      return hit;
    }
    const own = Boolean(query) && item.dataset.text.includes(query);
    let inside = false;
    for (const child of item.querySelector("ul").children) {
      inside = narrow(child, query, shown || own) || inside;
    }
    item.hidden = !(shown || own || inside || !query);
    if (query && (inside || own)) item.querySelector("details").open = true;
    return own || inside;
  }

  function filterTree() {
    const tree = $("config-tree");
    const query = $("config-filter").value.trim().toLowerCase();
    const sections = [...tree.querySelectorAll("details")];
    if (query && !saved) saved = new Map(sections.map((details) => [details, details.open]));
    for (const item of tree.querySelector("ul").children) narrow(item, query, false);
    const hits = query
      ? [...tree.querySelectorAll("li")].filter((li) => li.dataset.text.includes(query)).length
      : 0;
    if (!query && saved) {
      for (const [details, open] of saved) details.open = open;
      saved = null;
    }
    $("config-none").hidden = !query || hits > 0;
    $("config-count").textContent = query ? t("admin.health.matches", { count: number(hits) }) : "";
  }

  async function loadConfiguration() {
    const section = $("configuration");
    section.hidden = false;
    try {
      const answer = await api("/api/admin/configuration");
      const list = element("ul", "root");
      for (const [key, value] of Object.entries(answer.configuration || {})) {
        list.append(node(key, value, "", 0));
      }
      $("config-tree").replaceChildren(list);
      filterTree();
    } catch (error) {
      $("config-tree").replaceChildren(element("p", "problem",
        t("admin.health.configuration_failed", { reason: reason(error) })));
    }
  }

  function openAll(open) {
    for (const details of $("config-tree").querySelectorAll("details")) {
      const item = details.parentElement;
      if (!item.hidden) details.open = open;
    }
  }

  async function start() {
    user = await window.hounsfieldAdmin.start("health");
    $("live").addEventListener("change", function () {
      if ($("live").checked) load();
      else schedule();
    });
    $("refresh").addEventListener("click", load);
    document.addEventListener("visibilitychange", function () {
      if (!document.hidden && $("live").checked) load();
    });
    if (user.role === "admin") {
      $("config-filter").addEventListener("input", filterTree);
      $("expand").addEventListener("click", () => openAll(true));
      $("collapse").addEventListener("click", () => openAll(false));
      loadConfiguration();
    } else {
      $("configuration").remove(); // not theirs: the API refuses it to them anyway
    }
    await load();
  }

  start().catch((error) => show(reason(error)));
})();
