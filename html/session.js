// Keeps a signed-in page signed in: the access cookie lives minutes (AccessTokenMinutes),
// the session hours. Shortly before the access token expires, one tab (a Web Lock makes
// the others wait, since a refresh token used twice closes the session) calls
// /api/auth/refresh, which sets fresh cookies; when the session is over, the page goes to
// the sign-in page. Used by the viewer (OHIF) and Orthanc Explorer; the sign-in page
// records the first expiry.
(function () {
  "use strict";
  const EXPIRES = "hf_access_expires";
  const CHECK_MS = 10000;

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
