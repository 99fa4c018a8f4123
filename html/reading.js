// What the worklist and the reading page share: the header (who is signed in, the language
// menu, signing out), badges, claiming and releasing a study, and where a study opens.
(function () {
  "use strict";
  const { api, me } = window.hounsfieldSession;
  const { t } = window.hounsfieldI18n;
  // Who claims, writes and signs (the reading API's READING roles): others read.
  const READING_ROLES = ["admin", "radiologist"];
  const OPEN = ["unread", "in_progress", "draft"]; // not signed yet: claimable

  function badge(kind, value) {
    const span = document.createElement("span");
    span.className = "badge " + kind + "-" + value;
    span.textContent = t(kind + "." + value);
    return span;
  }

  // A DICOM person name (Family^Given^Middle^Prefix^Suffix) as a reader writes it.
  function personName(dicom) {
    const [family = "", given = "", middle = ""] = (dicom || "").split("^");
    const first = [given, middle].filter(Boolean).join(" ");
    return family && first ? family + ", " + first : family || first;
  }

  function claimPath(studyId) {
    return "/api/studies/" + encodeURIComponent(studyId) + "/claim";
  }

  // A refusal in words: who holds the study (409), else the server's explanation.
  function refusal(error) {
    const answer = error.answer || {};
    return error.status === 409 && answer.holder
      ? t("claim.held_by", { holder: answer.holder })
      : error.message;
  }

  async function header() {
    const user = await me();
    document.getElementById("account").textContent = t("nav.account", {
      user: user.username,
      role: t("role." + user.role),
    });
    window.hounsfieldI18n.menu(document.getElementById("language"));
    document.getElementById("sign-out").addEventListener("click", window.hounsfieldSession.signOut);
    window.hounsfieldSession.start();
    return user;
  }

  window.hounsfieldReading = {
    badge: badge,
    personName: personName,
    refusal: refusal,
    header: header,
    canWrite: (user) => READING_ROLES.includes(user.role),
    isOpen: (status) => OPEN.includes(status),
    claim: (studyId) => api(claimPath(studyId), { method: "POST" }),
    release: (studyId) => api(claimPath(studyId), { method: "DELETE" }),
    studyPage: (studyId) => "/reading/study.html?id=" + encodeURIComponent(studyId),
    viewer: (uid) => "/ohif/viewer?StudyInstanceUIDs=" + encodeURIComponent(uid),
  };
})();
