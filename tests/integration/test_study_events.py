"""A study's life as extensions see it: new, stable, deleted, each delivered once, in order;
and a study deleted before it settles is forgotten at once (it will never be stable)."""

from __future__ import annotations

import sqlite3

from tests.support.server import OrthancServer, wait_for


def lifecycle(orthanc: OrthancServer, resource_id: str) -> list[str]:
    """The events delivered for ``resource_id``, in delivery order."""
    if not orthanc.lifecycle_log.exists():
        return []
    lines = [line.split() for line in orthanc.lifecycle_log.read_text().splitlines()]
    return [event for event, resource in lines if resource == resource_id]


def settling(orthanc: OrthancServer) -> set[str]:
    """The studies the plugin's own database holds as still settling."""
    database = orthanc.workdir / "data" / "hounsfield" / "hounsfield.db"
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as conn:
        return {row[0] for row in conn.execute("SELECT study_id FROM unsettled_studies")}


def test_a_study_is_new_then_stable_then_deleted_each_once(make_orthanc, dicom_file) -> None:
    orthanc = make_orthanc().start()
    orthanc.store(dicom_file("CT_small.dcm"))
    (study,) = orthanc.get("/studies?expand").json()
    (series,) = study["Series"]
    (instance,) = orthanc.get(f"/series/{series}").json()["Instances"]
    wait_for(lambda: "study.stable" in lifecycle(orthanc, study["ID"]), 30, "study.stable")

    assert orthanc.http.delete(orthanc.url(f"/studies/{study['ID']}"), timeout=10).ok
    wait_for(lambda: "study.deleted" in lifecycle(orthanc, study["ID"]), 30, "study.deleted")
    assert lifecycle(orthanc, study["ID"]) == ["study.new", "study.stable", "study.deleted"]
    assert lifecycle(orthanc, series) == ["series.new", "series.stable"]
    assert lifecycle(orthanc, instance) == ["instance.new"]


def test_a_study_deleted_before_it_settles_is_forgotten(make_orthanc, dicom_file) -> None:
    orthanc = make_orthanc(stable_age=60).start()
    orthanc.store(dicom_file("MR_small.dcm"))
    (study_id,) = orthanc.get("/studies").json()
    wait_for(lambda: study_id in settling(orthanc), 10, "the study to be noted as settling")

    assert orthanc.http.delete(orthanc.url(f"/studies/{study_id}"), timeout=10).ok
    wait_for(lambda: study_id not in settling(orthanc), 10, "the deleted study to be forgotten")
    wait_for(lambda: "study.deleted" in lifecycle(orthanc, study_id), 30, "study.deleted")
    assert lifecycle(orthanc, study_id) == ["study.new", "study.deleted"]
