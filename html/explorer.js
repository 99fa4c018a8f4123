// Added to Orthanc Explorer by the Hounsfield plugin: sends the CSRF token with the
// Explorer's writes (cookie sessions need it), offers "Sign out", and sends the user to
// the sign-in page when the session is gone.
(function () {
  "use strict";
  function cookie(name) {
    const found = document.cookie.split("; ").find((item) => item.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }
  function signIn() {
    const here = window.location.pathname + window.location.search + window.location.hash;
    window.location.assign("/login?next=" + encodeURIComponent(here));
  }
  $.ajaxSetup({ beforeSend: (xhr) => xhr.setRequestHeader("X-CSRF-Token", cookie("hf_csrf")) });
  $(document).ajaxError(function (event, xhr) {
    if (xhr.status === 401 || xhr.status === 403) {
      signIn();
    }
  });
  $(document).ready(function () {
    const button = $('<button type="button" id="hounsfield-sign-out">Sign out</button>').css({
      position: "fixed", right: "1rem", bottom: "1rem", zIndex: 2000, padding: "0.5rem 1rem",
      font: "600 14px system-ui, sans-serif", color: "#fff", background: "#2f7de1",
      border: 0, borderRadius: "6px", cursor: "pointer", width: "auto",
    });
    button.on("click", function () {
      $.post("/api/auth/logout").always(signIn);
    });
    $("body").append(button);
  });
})();
