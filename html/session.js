// Keeps a signed-in page signed in: the access cookie lives minutes (AccessTokenMinutes),
// the session hours. Shortly before the access token expires, one tab (a Web Lock makes
// the others wait, since a refresh token used twice closes the session) calls
// /api/auth/refresh, which sets fresh cookies; when the session is over, the page goes to
// the sign-in page. Used by the viewer (OHIF), Orthanc Explorer and our pages; the sign-in
// page records the first expiry. Our pages also call our API through ``api`` (the
// cookies, and the CSRF token that cookie sessions must send with writes).
(function () {
  "use strict";
  const EXPIRES = "hf_access_expires";
  const CHECK_MS = 10000;
  let account = null;

  // A refusal of our API: the status and the JSON answer (a 409 says who holds a study, or
  // which version the report is at), with the answer's explanation as its message.
  class ApiError extends Error {
    constructor(status, answer) {
      const details = (answer.details || []).map((d) => d.field + ": " + d.message).join("; ");
      super((answer.error || "HTTP " + status) + (details ? " (" + details + ")" : ""));
      this.status = status;
      this.answer = answer;
    }
  }

  function cookie(name) {
    const found = document.cookie.split("; ").find((item) => item.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  // JSON in (``json``) and out; an answer that is not 2xx throws an ApiError, and a 401
  // (the session is over) goes to the sign-in page.
  async function api(path, options = {}) {
    const { json, ...rest } = options;
    const response = await fetch(path, {
      credentials: "same-origin",
      ...rest,
      body: json === undefined ? rest.body : JSON.stringify(json),
      headers: { "Content-Type": "application/json", "X-CSRF-Token": cookie("hf_csrf") },
    });
    const answer = await response.json().catch(() => ({}));
    if (response.status === 401) {
      signIn();
    }
    if (!response.ok) {
      throw new ApiError(response.status, answer);
    }
    return answer;
  }

  function signIn() {
    const here = window.location.pathname + window.location.search + window.location.hash;
    window.location.assign("/login?next=" + encodeURIComponent(here));
  }

  async function refreshIfDue() {
    const expires = Number(localStorage.getItem(EXPIRES) || 0);
    const lifetime = Number(localStorage.getItem(EXPIRES + "_lifetime") || 0);
    const margin = Math.min(120000, lifetime / 2);
    if (expires - Date.now() > margin) {
      return;
    }
    const response = await fetch("/api/auth/refresh", {
      method: "POST",
      credentials: "same-origin",
    });
    if (!response.ok) {
      signIn();
      return;
    }
    const answer = await response.json();
    window.hounsfieldSession.recordExpiry(answer.expires_in);
  }

  function check() {
    if (navigator.locks) {
      navigator.locks.request("hounsfield-refresh", refreshIfDue);
    } else {
      refreshIfDue();
    }
  }

  window.hounsfieldSession = {
    api: api,
    ApiError: ApiError,
    // The signed-in user (GET /api/auth/me), asked once per page.
    me: function () {
      account = account || api("/api/auth/me");
      return account;
    },
    signOut: function () {
      api("/api/auth/logout", { method: "POST" }).finally(signIn);
    },
    recordExpiry: function (seconds) {
      localStorage.setItem(EXPIRES, String(Date.now() + seconds * 1000));
      localStorage.setItem(EXPIRES + "_lifetime", String(seconds * 1000));
    },
    start: function () {
      check();
      setInterval(check, CHECK_MS);
    },
  };
})();
