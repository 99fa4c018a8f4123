// Translates our pages. Their words are flat catalogues, one per language
// (html/i18n/<language>.json: key -> text with {name} placeholders), served by GET /i18n,
// which picks the language: the signed-in user's setting, else the browser's first language
// we have (navigator.languages), else English. A page marks its words with a data-i18n
// attribute naming the key (for the element's text) or data-i18n-placeholder / -title /
// -aria-label (for that attribute); its script waits for ``hounsfieldI18n.ready`` and
// writes the rest with ``t(key, values)``. Signed-in pages load this with a data-signed-in
// attribute (after session.js): the user's setting is asked for, and ``menu`` lets them
// change it. The page stays transparent until its words are in, so that nobody sees it
// switch language (transparent rather than hidden: autofocus still lands).
(function () {
  "use strict";
  const ATTRIBUTES = ["placeholder", "title", "aria-label"];
  const signedIn = document.currentScript.hasAttribute("data-signed-in");
  const root = document.documentElement;
  const words = { language: "en", languages: {}, messages: {} };
  const browser = navigator.languages || [navigator.language];
  let locale = "en"; // dates and times: the browser's variant of the page's language (en-GB)
  root.style.opacity = "0";

  function t(key, values) {
    const template = words.messages[key];
    if (template === undefined) {
      return key;
    }
    return template.replace(/\{(\w+)\}/g, (whole, name) =>
      values && values[name] !== undefined && values[name] !== null ? String(values[name]) : whole,
    );
  }

  function apply(container) {
    for (const element of container.querySelectorAll("[data-i18n]")) {
      element.textContent = t(element.dataset.i18n);
    }
    for (const attribute of ATTRIBUTES) {
      for (const element of container.querySelectorAll("[data-i18n-" + attribute + "]")) {
        element.setAttribute(attribute, t(element.getAttribute("data-i18n-" + attribute)));
      }
    }
  }

  async function load() {
    const query = new URLSearchParams({ browser: browser.join(",") });
    if (signedIn) {
      const me = await window.hounsfieldSession.me();
      if (me.language) {
        query.set("user", me.language);
      }
    }
    const response = await fetch("/i18n?" + query, { credentials: "same-origin" });
    Object.assign(words, await response.json());
    root.lang = words.language;
    locale = browser.find((tag) => tag.split("-")[0] === words.language) || words.language;
    apply(document);
  }

  // The languages, each in its own words, in ``select``; choosing one makes it the user's
  // setting (PUT /api/auth/me) and shows the page again in it.
  function menu(select) {
    for (const [code, name] of Object.entries(words.languages)) {
      select.append(new Option(name, code, false, code === words.language));
    }
    select.addEventListener("change", async function () {
      await window.hounsfieldSession.api("/api/auth/me", {
        method: "PUT",
        json: { language: select.value },
      });
      window.location.reload();
    });
  }

  // An ISO time (our API's) as the reader's language writes it (``dateStyle`` "medium", or
  // "short" where room is scarce); "" for none.
  function dateTime(iso, dateStyle) {
    const style = { dateStyle: dateStyle || "medium", timeStyle: "short" };
    return iso ? new Date(iso).toLocaleString(locale, style) : "";
  }

  // The time of day of an ISO time, for what happened minutes ago.
  function clock(iso) {
    return iso ? new Date(iso).toLocaleTimeString(locale) : "";
  }

  // A DICOM date (YYYYMMDD) the same way; left as it is when it is not one.
  function dicomDate(value) {
    const found = /^(\d{4})(\d{2})(\d{2})$/.exec(value || "");
    if (!found) {
      return value || "";
    }
    const date = new Date(Date.UTC(Number(found[1]), Number(found[2]) - 1, Number(found[3])));
    return date.toLocaleDateString(locale, { dateStyle: "medium", timeZone: "UTC" });
  }

  window.hounsfieldI18n = {
    ready: load()
      .catch((error) => console.error("page words not loaded", error))
      .finally(() => {
        root.style.opacity = "";
      }),
    t: t,
    apply: apply,
    menu: menu,
    dateTime: dateTime,
    clock: clock,
    dicomDate: dicomDate,
    get language() {
      return words.language;
    },
    get languages() {
      return words.languages;
    },
  };
})();
