// Sign-in page: posts the credentials to /api/auth/login (same origin, so the session
// cookies it sets are sent with every later request) and goes on to ?next=, or by default
// to where the user's role works, as the server says (user.home: Orthanc Explorer for
// admins, the viewer for others, unless a feature such as the reading worklist says
// otherwise). A user whose password an admin reset chooses a new one first: the session
// may do nothing else until then, and a refresh then gives it a full token.
(function () {
  "use strict";
  const form = document.getElementById("login-form");
  const message = document.getElementById("message");
  const otpRow = document.getElementById("otp-row");
  const button = document.getElementById("submit");
  const t = window.hounsfieldI18n.t;
  // The server's refusals we say in the reader's language (others are shown as sent).
  const REFUSALS = {
    "invalid user name or password": "login.refused",
    "account locked after repeated failures; try again later": "login.locked",
    "one-time password is wrong": "login.otp_wrong",
  };

  function nextPage(user) {
    const next = new URLSearchParams(window.location.search).get("next") || "";
    // Only paths on this server: never "//elsewhere" or "https://elsewhere".
    if (/^\/(?![\/\\])/.test(next)) {
      return next;
    }
    return (user && user.home) || "/ohif/";
  }

  function show(text, line) {
    const where = line || message;
    where.textContent = text;
    where.hidden = !text;
  }

  // After an admin's reset: the new password, then a token without the restriction.
  function changePassword(current, user) {
    const change = document.getElementById("change-form");
    const changeMessage = document.getElementById("change-message");
    form.hidden = true;
    change.hidden = false;
    change.password.focus();
    change.addEventListener("submit", async function (event) {
      event.preventDefault();
      show("", changeMessage);
      if (change.password.value !== change.repeat.value) {
        show(t("login.mismatch"), changeMessage);
        return;
      }
      const { api } = window.hounsfieldSession;
      try {
        await api("/api/auth/password", {
          method: "POST",
          json: { current_password: current, new_password: change.password.value },
        });
        const renewed = await api("/api/auth/refresh", { method: "POST" });
        window.hounsfieldSession.recordExpiry(renewed.expires_in);
        window.location.assign(nextPage(user));
      } catch (error) {
        show(error.message || String(error), changeMessage);
      }
    });
  }

  form.addEventListener("submit", async function (event) {
    event.preventDefault();
    show("");
    const body = {
      username: form.username.value.trim(),
      password: form.password.value,
    };
    if (!otpRow.hidden && form.otp.value) {
      body.otp = form.otp.value.trim();
    }
    button.disabled = true;
    try {
      const response = await fetch("/api/auth/login", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        credentials: "same-origin",
        body: JSON.stringify(body),
      });
      const answer = await response.json().catch(() => ({}));
      if (response.ok) {
        window.hounsfieldSession.recordExpiry(answer.expires_in);
        if (answer.user.mustChangePassword) {
          changePassword(body.password, answer.user);
        } else {
          window.location.assign(nextPage(answer.user));
        }
        return;
      }
      if (answer.error === "one-time password required") {
        otpRow.hidden = false;
        form.otp.focus();
        show(t("login.otp_needed"));
      } else if (REFUSALS[answer.error]) {
        show(t(REFUSALS[answer.error]));
      } else {
        show(answer.error || t("login.failed", { status: response.status }));
      }
    } catch (error) {
      show(t("login.unreachable"));
    } finally {
      button.disabled = false;
    }
  });
})();
