// Added to Orthanc Explorer by the Hounsfield plugin: sends the CSRF token with the
// Explorer's writes (cookie sessions need it), offers "Sign out" and, on a study's page,
// "Open in viewer" (OHIF) and "Open reading page" (when the reading worklist has the study:
// the reading extension may not be installed), and sends the user to the sign-in page when
// the session is gone.
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
  function button(id, text) {
    return $('<button type="button"></button>').attr("id", id).text(text).css({
      margin: 0, padding: "0.5rem 1rem", font: "600 14px system-ui, sans-serif", color: "#fff",
      background: "#2f7de1", border: 0, borderRadius: "6px", cursor: "pointer", width: "auto",
    });
  }
  function shownStudy() {
    const found = /^#study\?uuid=([0-9a-f-]+)/.exec(window.location.hash);
    return found ? found[1] : null;
  }
  $.getScript("/login/session.js", () => window.hounsfieldSession.start());
  $(document).ready(function () {
    const signOut = button("hounsfield-sign-out", "Sign out");
    signOut.on("click", function () {
      $.post("/api/auth/logout").always(signIn);
    });
    const viewer = button("hounsfield-open-viewer", "Open in viewer");
    viewer.on("click", function () {
      $.getJSON("/studies/" + shownStudy(), function (study) {
        const uid = encodeURIComponent(study.MainDicomTags.StudyInstanceUID);
        window.open("/ohif/viewer?StudyInstanceUIDs=" + uid, "_blank");
      });
    });
    const reading = button("hounsfield-open-reading", "Open reading page");
    reading.on("click", function () {
      window.location.assign("/reading/study.html?id=" + encodeURIComponent(shownStudy()));
    });
    function showViewerOnStudies() {
      const study = shownStudy();
      viewer.toggle(study !== null);
      reading.hide();
      if (study !== null) {
        // fetch, not $.ajax: a 404 (not in the worklist) is an answer here, not an error
        fetch("/api/worklist/" + encodeURIComponent(study), { credentials: "same-origin" }).then(
          (answer) => reading.toggle(answer.ok && shownStudy() === study),
        );
      }
    }
    $(window).on("hashchange", showViewerOnStudies);
    $(document).on("pageshow", showViewerOnStudies);
    showViewerOnStudies();
    // One floating row, bottom right: buttons shown or hidden never overlap.
    const bar = $("<div></div>").css({
      position: "fixed", right: "1rem", bottom: "1rem", zIndex: 2000, display: "flex", gap: "0.5rem",
    });
    $("body").append(bar.append(reading, viewer, signOut));
  });
})();
