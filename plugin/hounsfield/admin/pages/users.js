// The users page: every account with its role, state (active, disabled, locked), second
// factor and last sign-in; the chosen user's panel (role, disable or enable, unlock, second
// factor off, delete, a password reset the user must change at next sign-in, a referring
// physician's studies found by patient or accession, the user's API keys); a new user with
// the password policy checked as it is typed; service accounts' keys. Our API (admins only)
// and Orthanc's /tools/find for the studies; words in the reader's language.
(function () {
  "use strict";
  const { api } = window.hounsfieldSession;
  const i18n = window.hounsfieldI18n;
  const { t, dateTime, dicomDate } = i18n;
  const { element, show, reason, badge } = window.hounsfieldAdmin;
  const ROLES = ["admin", "radiologist", "technician", "referrer", "metrics"];
  const USERNAME = /^[a-z0-9][a-z0-9._-]{1,63}$/;
  const MAX_PASSWORD = 256;
  const STUDY_LIMIT = 50;
  const $ = (id) => document.getElementById(id);
  const createForm = $("create-form");
  const resetForm = $("reset-form");
  const searchForm = $("study-search");

  let me = null; // the signed-in admin
  let users = []; // GET /api/users's, in its order
  let policy = { minLength: 12 };
  let chosen = null; // the chosen user's name
  let drawing = 0; // the panel's latest drawing: older answers (keys, studies) are dropped
  let lastFound = []; // the studies the last search found, drawn again once one is linked
  const studies = new Map(); // StudyInstanceUID -> a promise of the study (null: not stored)

  // -- small helpers ------------------------------------------------------------------------

  const roleName = (role) => t("admin.users.role." + role);
  const userPath = (name) => "/api/users/" + encodeURIComponent(name);
  const find = (name) => users.find((user) => user.username === name) || null;

  function button(text, className, action) {
    const made = element("button", className, text);
    made.type = "button";
    made.addEventListener("click", action);
    return made;
  }

  // A DICOM person name ("Family^Given^Middle") as people write it: "Family, Given Middle".
  function personName(dicom) {
    const [family = "", given = "", middle = ""] = (dicom || "").split("^");
    const first = [given, middle].filter(Boolean).join(" ");
    return family && first ? family + ", " + first : family || first;
  }

  function activeAdmins() {
    return users.filter((user) => user.role === "admin" && !user.disabled).length;
  }

  function isLastAdmin(user) {
    return user.role === "admin" && !user.disabled && activeAdmins() <= 1;
  }

  // The server's refusal as the reader should read it: the last active admin in their words.
  function refusal(error) {
    const said = (error.answer && error.answer.error) || "";
    if (error.status === 409 && /last active admin/.test(said)) return t("admin.users.last_admin");
    return reason(error);
  }

  // -- state in words and colour --------------------------------------------------------------

  // ``short``: for the table (the panel says more).
  function stateBadges(user, short) {
    const shown = [];
    if (user.disabled) shown.push(badge("bad", t("admin.users.state.disabled")));
    if (user.locked) shown.push(badge("warn", t("admin.users.state.locked")));
    if (!user.disabled && !user.locked) shown.push(badge("good", t("admin.users.state.active")));
    if (user.mustChangePassword) {
      const key = "admin.users.state.must_change" + (short ? "_short" : "");
      shown.push(badge("info", t(key)));
    }
    return shown;
  }

  // ``long``: named (in the panel, where no column header says what it is).
  function totpBadge(user, long) {
    const key = "admin.users.totp." + (user.totpEnabled ? "on" : "off") + (long ? "_long" : "");
    return badge(user.totpEnabled ? "good" : "", t(key));
  }

  function lastSignIn(user) {
    return user.lastSignInAt ? dateTime(user.lastSignInAt, "short") : t("admin.users.never");
  }

  // -- the password policy, checked as it is typed -----------------------------------------

  // Each rule: [key, check(password, username)]; the server checks them all again (and
  // refuses common passwords, which only it knows).
  function rules() {
    return [
      [
        "admin.users.policy.length",
        (password) => password.length >= policy.minLength && password.length <= MAX_PASSWORD,
      ],
      [
        "admin.users.policy.name",
        (password, username) =>
          !username || !password.toLowerCase().includes(username.toLowerCase()),
      ],
      ["admin.users.policy.distinct", (password) => new Set(password).size >= 4],
    ];
  }

  // Draws ``list``'s rules for ``password``: each met, not met, or (nothing typed) to come.
  // Returns whether all are met.
  function checkPolicy(list, password, username) {
    let all = true;
    const items = rules().map(function ([key, check]) {
      const met = check(password, username);
      all = all && met;
      const state = !password ? "pending" : met ? "met" : "unmet";
      const item = element("li", state);
      item.dataset.rule = key.split(".").pop();
      const mark = element("span", "mark", { pending: "•", met: "✓", unmet: "✗" }[state]);
      mark.setAttribute("aria-hidden", "true");
      item.append(mark, element("span", "", t(key, { min: policy.minLength })));
      if (password) {
        item.append(element("span", "visually-hidden", " " + t("admin.users.policy." + state)));
      }
      return item;
    });
    const common = element("li", "note");
    common.dataset.rule = "common";
    const mark = element("span", "mark", "•");
    mark.setAttribute("aria-hidden", "true");
    common.append(mark, element("span", "", t("admin.users.policy.common")));
    list.replaceChildren(...items, common);
    return all && password.length > 0;
  }

  function createPolicy() {
    const form = createForm.elements;
    return checkPolicy($("create-policy"), form.password.value, form.username.value.trim());
  }

  function resetPolicy() {
    return checkPolicy($("reset-policy"), resetForm.elements.password.value, chosen || "");
  }

  // -- the list ----------------------------------------------------------------------------

  function matches(user) {
    const text = $("filter-text").value.trim().toLowerCase();
    const role = $("filter-role").value;
    const state = $("filter-state").value;
    if (text && !user.username.includes(text)) return false;
    if (role && user.role !== role) return false;
    if (state === "active") return !user.disabled && !user.locked;
    if (state === "disabled") return user.disabled;
    if (state === "locked") return user.locked;
    return true;
  }

  function userRow(user) {
    const row = element("tr");
    row.dataset.user = user.username;
    const name = element("td", "name");
    const pick = element("button", "pick", user.username);
    pick.type = "button";
    pick.setAttribute("aria-pressed", String(user.username === chosen));
    pick.addEventListener("click", () => choose(user.username, true));
    name.append(pick);
    if (me && user.username === me.username) {
      name.append(element("span", "you", t("admin.users.you")));
    }
    const role = element("td", "", roleName(user.role));
    if (user.role === "referrer") {
      const count = (user.studies || []).length;
      role.append(element("span", "aside", t("admin.users.study_count", { count: count })));
    }
    const badges = element("span", "badges");
    badges.append(...stateBadges(user, true));
    const state = element("td");
    state.append(badges);
    const totp = element("td");
    totp.append(totpBadge(user));
    row.append(name, role, state, totp, element("td", "when", lastSignIn(user)));
    if (user.username === chosen) row.classList.add("chosen");
    return row;
  }

  function drawList() {
    const shown = users.filter(matches);
    $("user-rows").replaceChildren(...shown.map(userRow));
    $("no-users").hidden = shown.length > 0;
    $("counts").textContent = t("admin.users.counts", { shown: shown.length, total: users.length });
  }

  async function load() {
    const answer = await api("/api/users");
    users = answer.users;
    policy = Object.assign({ minLength: 12 }, answer.passwordPolicy || {});
    drawList();
    if (chosen && !find(chosen)) chosen = null;
    drawDetail();
  }

  // -- the chosen user ---------------------------------------------------------------------

  function choose(name, focus) {
    chosen = name;
    const url = new URL(window.location.href);
    if (name) url.searchParams.set("user", name);
    else url.searchParams.delete("user");
    window.history.replaceState(null, "", url);
    resetForm.reset();
    $("reset-error").hidden = true;
    $("found").replaceChildren();
    $("search-status").textContent = "";
    searchForm.reset();
    show("");
    drawList();
    drawDetail();
    if (focus && name) {
      $("detail").scrollIntoView({ block: "nearest" });
      $("detail-title").focus();
    }
  }

  function fact(key, value) {
    const row = element("div");
    row.append(element("dt", "", t(key)), element("dd", "", value));
    return row;
  }

  function languageName(code) {
    return code ? i18n.languages[code] || code : t("admin.users.browser_language");
  }

  function drawDetail() {
    const user = chosen && find(chosen);
    const ticket = ++drawing;
    $("no-choice").hidden = Boolean(user);
    $("chosen").hidden = !user;
    if (!user) return;
    const myself = me && user.username === me.username;
    $("detail-title").textContent = user.username;
    $("detail-badges").replaceChildren(...stateBadges(user, false), totpBadge(user, true));
    $("facts").replaceChildren(
      fact("admin.users.column.role", roleName(user.role)),
      fact("admin.users.column.last_sign_in", lastSignIn(user)),
      fact("admin.users.created_at", dateTime(user.createdAt, "short")),
      fact("admin.users.updated_at", dateTime(user.updatedAt, "short")),
      fact("admin.users.language", languageName(user.language)),
    );
    $("last-admin").hidden = !isLastAdmin(user);
    $("myself").hidden = !myself;
    $("role-menu").value = user.role;
    $("change-role").disabled = true;
    $("disable").hidden = user.disabled;
    $("enable").hidden = !user.disabled;
    $("unlock").hidden = !user.locked;
    $("totp-off").hidden = !user.totpEnabled;
    resetPolicy();
    $("studies-block").hidden = user.role !== "referrer";
    if (user.role === "referrer") drawLinked(user, ticket);
    drawKeys(user, ticket);
  }

  // A PUT of ``changes`` to the chosen user; ``done`` the words said once it is made.
  async function change(changes, done) {
    const name = chosen;
    try {
      await api(userPath(name), { method: "PUT", json: changes });
      show(t(done, { user: name }), true);
    } catch (error) {
      show(refusal(error));
    }
    await load();
  }

  // -- a referrer's studies ----------------------------------------------------------------

  // Orthanc's studies whose ``tag`` matches ``value`` (wildcards allowed), with their tags.
  function findStudies(tag, value, limit) {
    return api("/tools/find", {
      method: "POST",
      json: { Level: "Study", Expand: true, Limit: limit, Query: { [tag]: value } },
    });
  }

  function lookUp(uid) {
    if (!studies.has(uid)) {
      const asked = findStudies("StudyInstanceUID", uid, 1).then((found) => found[0] || null);
      studies.set(uid, asked);
      asked.catch(() => studies.delete(uid)); // asked again next time
    }
    return studies.get(uid);
  }

  function studyLine(study) {
    const tags = study.MainDicomTags || {};
    const patient = study.PatientMainDicomTags || {};
    const line = element("span", "study");
    line.append(element("strong", "", personName(patient.PatientName) || t("admin.users.no_name")));
    const facts = [
      patient.PatientID && t("admin.users.patient_id", { id: patient.PatientID }),
      tags.StudyDate && dicomDate(tags.StudyDate),
      tags.StudyDescription,
      tags.AccessionNumber && t("admin.users.accession", { accession: tags.AccessionNumber }),
    ].filter(Boolean);
    line.append(element("span", "aside", facts.join(" · ")));
    return line;
  }

  async function drawLinked(user, ticket) {
    const linked = user.studies || [];
    const found = await Promise.all(linked.map((uid) => lookUp(uid).catch(() => null)));
    if (ticket !== drawing) return;
    const items = linked.map(function (uid, index) {
      const item = element("li");
      item.dataset.uid = uid;
      if (found[index]) {
        item.append(studyLine(found[index]));
      } else {
        const missing = element("span", "study");
        missing.append(
          element("strong", "", t("admin.users.not_stored")),
          element("span", "aside uid", uid),
        );
        item.append(missing);
      }
      const unlink = button(t("admin.users.unlink"), "small quiet", () =>
        linkStudies(linked.filter((other) => other !== uid), "admin.users.unlinked"),
      );
      unlink.setAttribute("aria-label", t("admin.users.unlink_named", { study: item.textContent }));
      item.append(unlink);
      return item;
    });
    $("linked").replaceChildren(...items);
    $("no-linked").hidden = linked.length > 0;
  }

  async function linkStudies(list, done) {
    await change({ studies: list }, done);
    const status = $("search-status").textContent;
    if (status) drawFound(lastFound, status);
  }

  function drawFound(found, status) {
    const user = find(chosen);
    const linked = new Set((user && user.studies) || []);
    lastFound = found;
    $("search-status").textContent = status;
    $("found").replaceChildren(
      ...found.map(function (study) {
        const uid = (study.MainDicomTags || {}).StudyInstanceUID;
        const item = element("li");
        item.dataset.uid = uid;
        item.append(studyLine(study));
        if (linked.has(uid)) {
          item.append(badge("good", t("admin.users.linked")));
        } else {
          const link = button(t("admin.users.link"), "small", function () {
            studies.set(uid, Promise.resolve(study));
            linkStudies([...linked, uid], "admin.users.linked_done");
          });
          link.setAttribute("aria-label", t("admin.users.link_named", { study: item.textContent }));
          item.append(link);
        }
        return item;
      }),
    );
  }

  searchForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const by = searchForm.elements.by.value;
    const term = searchForm.elements.term.value.trim().replace(/[*?]/g, "");
    if (!term) return;
    $("search-status").textContent = t("admin.users.searching");
    $("found").replaceChildren();
    try {
      const found = await findStudies(by, "*" + term + "*", STUDY_LIMIT);
      const status = found.length
        ? t(found.length >= STUDY_LIMIT ? "admin.users.found_many" : "admin.users.found", {
            count: found.length,
          })
        : t("admin.users.found_none");
      drawFound(found, status);
    } catch (error) {
      $("search-status").textContent = t("admin.users.search_failed", { error: reason(error) });
    }
  });

  // -- API keys ----------------------------------------------------------------------------

  function keyState(key) {
    const kind = { active: "good", expired: "warn", revoked: "bad" }[key.state] || "";
    return badge(kind, t("admin.users.key_state." + key.state));
  }

  function keysTable(keys, withMaker) {
    const table = element("table", "keys");
    const head = element("tr");
    const columns = ["key", "role", "state"];
    if (withMaker) columns.splice(1, 0, "made_by");
    for (const column of columns) {
      const cell = element("th", "", t("admin.users.key." + column));
      cell.scope = "col";
      head.append(cell);
    }
    const actions = element("th");
    actions.append(element("span", "visually-hidden", t("admin.users.key.actions")));
    head.append(actions);
    const thead = element("thead");
    thead.append(head);
    const body = element("tbody");
    for (const key of keys) {
      const row = element("tr");
      row.dataset.key = key.id;
      const name = element("td");
      name.append(element("strong", "", key.name));
      const when = (label, iso) => t("admin.users.key." + label, { time: dateTime(iso, "short") });
      const dates = [when("created", key.createdAt)];
      if (key.expiresAt) dates.push(when("expires", key.expiresAt));
      if (key.revokedAt) dates.push(when("revoked", key.revokedAt));
      dates.push(key.lastUsedAt ? when("used", key.lastUsedAt) : t("admin.users.key.never_used"));
      name.append(...dates.map((date) => element("span", "aside when", date)));
      const role = element("td", "", roleName(key.role));
      if (key.readOnly) role.append(element("span", "aside", t("admin.users.key.read_only")));
      const state = element("td");
      state.append(keyState(key));
      const cells = [name, role, state];
      if (withMaker) cells.splice(1, 0, element("td", "", key.createdBy));
      const action = element("td");
      if (key.state === "active") {
        const revoke = button(t("admin.users.revoke"), "small danger", () => revokeKey(key));
        revoke.setAttribute("aria-label", t("admin.users.revoke_named", { key: key.name }));
        action.append(revoke);
      }
      row.append(...cells, action);
      body.append(row);
    }
    table.append(thead, body);
    const frame = element("div", "table-frame");
    frame.append(table);
    return frame;
  }

  async function drawKeys(user, ticket) {
    let keys;
    try {
      keys = (await api("/api/keys?owner=" + encodeURIComponent(user.username))).keys;
    } catch (error) {
      if (ticket === drawing) $("keys").replaceChildren(element("p", "form-error", reason(error)));
      return;
    }
    if (ticket !== drawing) return;
    $("keys").replaceChildren(...(keys.length ? [keysTable(keys, false)] : []));
    $("no-keys").hidden = keys.length > 0;
  }

  async function drawServiceKeys() {
    const keys = (await api("/api/keys")).keys.filter((key) => key.service);
    $("service-key-list").replaceChildren(...(keys.length ? [keysTable(keys, true)] : []));
    $("no-service-keys").hidden = keys.length > 0;
  }

  async function revokeKey(key) {
    if (!window.confirm(t("admin.users.revoke_confirm", { key: key.name }))) return;
    try {
      await api("/api/keys/" + encodeURIComponent(key.id), { method: "DELETE" });
      show(t("admin.users.revoked", { key: key.name }), true);
    } catch (error) {
      show(reason(error));
    }
    if (key.service) await drawServiceKeys();
    else drawDetail();
  }

  // -- the panel's actions ---------------------------------------------------------------

  $("role-menu").addEventListener("change", function () {
    const user = find(chosen);
    $("change-role").disabled = !user || this.value === user.role;
  });

  $("role-form").addEventListener("submit", function (event) {
    event.preventDefault();
    const role = $("role-menu").value;
    if (chosen === me.username && !window.confirm(t("admin.users.role_self_confirm"))) return;
    change({ role: role }, "admin.users.role_changed");
  });

  $("disable").addEventListener("click", function () {
    const self = chosen === me.username;
    const asked = t(self ? "admin.users.disable_self_confirm" : "admin.users.disable_confirm", {
      user: chosen,
    });
    if (window.confirm(asked)) change({ disabled: true }, "admin.users.disabled_done");
  });
  $("enable").addEventListener("click", function () {
    change({ disabled: false }, "admin.users.enabled_done");
  });
  $("unlock").addEventListener("click", function () {
    change({ unlock: true }, "admin.users.unlocked_done");
  });
  $("totp-off").addEventListener("click", function () {
    if (window.confirm(t("admin.users.totp_confirm", { user: chosen }))) {
      change({ totp: false }, "admin.users.totp_done");
    }
  });

  $("delete").addEventListener("click", async function () {
    const name = chosen;
    if (!window.confirm(t("admin.users.delete_confirm", { user: name }))) return;
    try {
      await api(userPath(name), { method: "DELETE" });
      choose(null);
      show(t("admin.users.deleted", { user: name }), true);
    } catch (error) {
      show(refusal(error));
    }
    await load();
  });

  resetForm.elements.password.addEventListener("input", resetPolicy);
  resetForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const error = $("reset-error");
    const input = resetForm.elements.password;
    error.hidden = true;
    if (!resetPolicy()) {
      error.textContent = t("admin.users.policy_unmet");
      error.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    input.removeAttribute("aria-invalid");
    const name = chosen;
    try {
      await api(userPath(name), { method: "PUT", json: { password: input.value } });
      resetForm.reset();
      show(t("admin.users.reset_done", { user: name }), true);
    } catch (refused) {
      error.textContent = t("admin.users.refused", { reason: refusal(refused) });
      error.hidden = false;
    }
    await load();
  });

  // -- a new user --------------------------------------------------------------------------

  function createError(text, field) {
    const line = $("create-error");
    line.textContent = text;
    line.hidden = !text;
    for (const control of createForm.querySelectorAll("[aria-invalid]")) {
      control.removeAttribute("aria-invalid");
    }
    if (field) {
      createForm.elements[field].setAttribute("aria-invalid", "true");
      createForm.elements[field].focus();
    }
  }

  createForm.elements.password.addEventListener("input", createPolicy);
  createForm.elements.username.addEventListener("input", createPolicy);
  createForm.elements.role.addEventListener("change", function () {
    $("referrer-note").hidden = this.value !== "referrer";
  });

  createForm.addEventListener("submit", async function (event) {
    event.preventDefault();
    const form = createForm.elements;
    const username = form.username.value.trim();
    if (!USERNAME.test(username)) {
      createError(t("admin.users.username_invalid"), "username");
      return;
    }
    if (!createPolicy()) {
      createError(t("admin.users.policy_unmet"), "password");
      return;
    }
    createError("");
    $("create").disabled = true;
    try {
      const body = { username: username, password: form.password.value, role: form.role.value };
      await api("/api/users", { method: "POST", json: body });
      createForm.reset();
      $("referrer-note").hidden = true;
      createPolicy();
      await load();
      choose(username, true);
      show(t("admin.users.created", { user: username }), true);
    } catch (error) {
      const taken = error.status === 409;
      const text = taken
        ? t("admin.users.exists", { user: username })
        : t("admin.users.refused", { reason: reason(error) });
      createError(text, taken ? "username" : "password");
    } finally {
      $("create").disabled = false;
    }
  });

  $("new-user-button").addEventListener("click", function () {
    $("new-user").scrollIntoView({ block: "start" });
    createForm.elements.username.focus();
  });

  // -- the page ----------------------------------------------------------------------------

  $("filters").addEventListener("submit", (event) => event.preventDefault());
  $("filters").addEventListener("input", drawList);
  // A click anywhere on a row chooses its user (the name's button is the keyboard's way).
  $("user-rows").addEventListener("click", function (event) {
    const row = event.target.closest("tr[data-user]");
    if (row && !event.target.closest("button")) choose(row.dataset.user, false);
  });

  async function start() {
    me = await window.hounsfieldAdmin.start("users");
    // A new user is a radiologist unless said otherwise (also once the form is reset).
    for (const menu of document.querySelectorAll(".role-menu")) {
      const standard = (role) => menu.name === "role" && role === "radiologist";
      menu.replaceChildren(
        ...ROLES.map((role) => new Option(roleName(role), role, standard(role), standard(role))),
      );
    }
    $("filter-role").append(...ROLES.map((role) => new Option(roleName(role), role)));
    chosen = new URLSearchParams(window.location.search).get("user");
    await load();
    createPolicy();
    await drawServiceKeys();
  }

  start().catch((error) => show(reason(error)));
})();
