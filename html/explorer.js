// Added to Orthanc Explorer by the Hounsfield plugin: sends the CSRF token with the
// Explorer's writes (cookie sessions need it), offers "Sign out", a button for each page the
// features link for this user (GET /api/auth/me: links, e.g. Administration) and, on a
// study's page, "Open in viewer" (OHIF) and a button for each study page or action the
// features offer this user (studyPages: e.g. the reading page; "Analyze", which POSTs and
// shows the answer's message), and sends the user to the sign-in page when the session is
// gone.
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
  // The features' study pages and actions (GET /api/auth/me), one button each, shown on a
  // study's page; their links, on every page.
  const pages = $("<div></div>").css({ display: "flex", gap: "0.5rem" });
  const links = $("<div></div>").css({ display: "flex", gap: "0.5rem" });
  function act(page, pressed) {
    const study = encodeURIComponent(shownStudy());
    pressed.prop("disabled", true);
    $.ajax({
      url: page.template.replace("{study}", study),
      method: "POST",
      contentType: "application/json",
      data: "{}",
      global: false, // a refusal is said here, not taken for the end of the session
    })
      .done((answer) => window.alert(page.title + ": " + (answer.message || "done")))
      .fail((xhr) => window.alert(page.title + ": " + ((xhr.responseJSON || {}).error || xhr.status)))
      .always(() => pressed.prop("disabled", false));
  }
  $.getScript("/login/session.js", function () {
    const session = window.hounsfieldSession;
    session.start();
    session.me().then(function (user) {
      for (const page of user.studyPages) {
        const open = button("hounsfield-open-" + page.name, page.title);
        open.on("click", function () {
          if (page.method === "POST") {
            act(page, open);
            return;
          }
          const study = encodeURIComponent(shownStudy());
          window.location.assign(page.template.replace("{study}", study));
        });
        pages.append(open);
      }
      for (const link of user.links) {
        const go = button("hounsfield-link-" + link.name, link.title);
        go.on("click", () => window.location.assign(link.path));
        links.append(go);
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
    $("body").append(bar.append(pages, viewer, links, signOut));
  });
})();
