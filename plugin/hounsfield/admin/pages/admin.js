// What every administration page shares: the header (title, the pages an admin may open,
// the account, the language menu, sign out), the message line, and small DOM helpers.
// Loaded after session.js and i18n.js; each page calls ``hounsfieldAdmin.start(name)``
// and gets the signed-in user once the page's words are in.
(function () {
  "use strict";
  const session = window.hounsfieldSession;
  const i18n = window.hounsfieldI18n;
  // The pages, in the header's order: [name, path, who may open it].
  const PAGES = [
    ["users", "/admin", ["admin"]],
    ["audit", "/admin/audit.html", ["admin"]],
    ["jobs", "/admin/jobs.html", ["admin"]],
    ["health", "/admin/health", ["admin", "metrics"]],
  ];

  function element(tag, className, text) {
    const made = document.createElement(tag);
    if (className) made.className = className;
    if (text !== undefined && text !== null) made.textContent = text;
    return made;
  }

  // A number, and a duration in seconds, as the reader's language writes them ("1 min, 5 sec").
  function number(value) {
    return new Intl.NumberFormat(i18n.language).format(value);
  }

  function duration(seconds) {
    const whole = Math.max(0, Math.round(seconds));
    const parts = { hours: Math.floor(whole / 3600), minutes: Math.floor(whole / 60) % 60,
                    seconds: whole % 60 };
    if (typeof Intl.DurationFormat === "function") {
      return new Intl.DurationFormat(i18n.language, { style: "short" }).format(parts);
    }
    return i18n.t("admin.seconds", { seconds: number(whole) });
  }

  // A state in words and colour (``kind``: good, bad, warn, info, or "" for neutral).
  function badge(kind, text) {
    return element("span", ("badge " + kind).trim(), text);
  }

  // The message line: an error (or, with ``ok``, a confirmation); "" hides it.
  function show(text, ok) {
    const line = document.getElementById("message");
    line.textContent = text || "";
    line.classList.toggle("ok", Boolean(ok));
    line.hidden = !text;
  }

  // An API error as the reader should see it: the server's own reason.
  function reason(error) {
    return error && error.message ? error.message : String(error);
  }

  function header(current, user) {
    const bar = element("header");
    bar.append(element("h1", "", i18n.t("admin.title")));
    const nav = element("nav");
    nav.setAttribute("aria-label", i18n.t("admin.nav.label"));
    for (const [name, path, roles] of PAGES) {
      if (!roles.includes(user.role)) continue;
      const link = element("a", "", i18n.t("admin.nav." + name));
      link.href = path;
      if (name === current) link.setAttribute("aria-current", "page");
      nav.append(link);
    }
    if (user.role === "admin") {
      const explorer = element("a", "", i18n.t("admin.nav.explorer"));
      explorer.href = "/app/explorer.html";
      nav.append(explorer);
    }
    const role = i18n.t("role." + user.role);
    nav.append(element("span", "account", i18n.t("nav.account", { user: user.username, role: role })));
    const language = element("select");
    language.setAttribute("aria-label", i18n.t("nav.language"));
    i18n.menu(language);
    nav.append(language);
    const signOut = element("button", "quiet", i18n.t("nav.sign_out"));
    signOut.type = "button";
    signOut.addEventListener("click", session.signOut);
    nav.append(signOut);
    bar.append(nav);
    document.body.prepend(bar);
  }

  async function start(current) {
    session.start();
    await i18n.ready;
    const user = await session.me();
    header(current, user);
    document.title = i18n.t("admin." + current + ".page_title");
    return user;
  }

  window.hounsfieldAdmin = {
    start: start,
    element: element,
    show: show,
    reason: reason,
    number: number,
    duration: duration,
    badge: badge,
  };
})();
