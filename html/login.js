// Sign-in page: posts the credentials to /api/auth/login (same origin, so the session
// cookies it sets are sent with every later request) and goes on to ?next=, or by default
// to where the role works: Orthanc Explorer for admins, the viewer's study list otherwise.
(function () {
  "use strict";
  const form = document.getElementById("login-form");
  const message = document.getElementById("message");
  const otpRow = document.getElementById("otp-row");
  const button = document.getElementById("submit");

  function nextPage(role) {
    const next = new URLSearchParams(window.location.search).get("next") || "";
    // Only paths on this server: never "//elsewhere" or "https://elsewhere".
    if (/^\/(?![\/\\])/.test(next)) {
      return next;
    }
    return role === "admin" ? "/app/explorer.html" : "/ohif/";
  }

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
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
        window.location.assign(nextPage(answer.user && answer.user.role));
        return;
      }
      if (answer.error === "one-time password required") {
        otpRow.hidden = false;
        form.otp.focus();
        show("Enter the code from your authenticator app.");
      } else {
        show(answer.error || "Sign-in failed (" + response.status + ").");
      }
    } catch (error) {
      show("The server cannot be reached.");
    } finally {
      button.disabled = false;
    }
  });
})();
