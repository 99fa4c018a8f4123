// Added to Orthanc Explorer by the Hounsfield plugin: sends the CSRF token with the
// Explorer's writes (cookie sessions need it), offers "Sign out" and, on a study's page,
// "Open in viewer" (OHIF) and a button for each study page the features offer this user
// (GET /api/auth/me: studyPages, e.g. the reading page), and sends the user to the sign-in
// page when the session is gone.
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
  // The features' study pages (GET /api/auth/me), one button each, shown on a study's page.
  const pages = $("<div></div>").css({ display: "flex", gap: "0.5rem" });
  $.getScript("/login/session.js", function () {
    const session = window.hounsfieldSession;
    session.start();
    session.me().then(function (user) {
      for (const page of user.studyPages) {
        const open = button("hounsfield-open-" + page.name, page.title);
        open.on("click", function () {
          const study = encodeURIComponent(shownStudy());
          window.location.assign(page.template.replace("{study}", study));
        });
        pages.append(open);
      }
    });
  });
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
    function showViewerOnStudies() {
      const onStudy = shownStudy() !== null;
      viewer.toggle(onStudy);
      pages.toggle(onStudy);
    }
    $(window).on("hashchange", showViewerOnStudies);
    $(document).on("pageshow", showViewerOnStudies);
    showViewerOnStudies();
    // One floating row, bottom right: buttons shown or hidden never overlap.
    const bar = $("<div></div>").css({
      position: "fixed", right: "1rem", bottom: "1rem", zIndex: 2000, display: "flex", gap: "0.5rem",
    });
    $("body").append(bar.append(pages, viewer, signOut));
  });
})();
