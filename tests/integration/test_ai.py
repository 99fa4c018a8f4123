"""The AI second reader against a real Orthanc: a stable study is analysed by the rules,
findings land where the phantom put them, SR and SEG are in the study and valid, a
critical finding flags the study until a radiologist reviews it, and bad input fails
cleanly while the other analyses go on."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.support.ai import Head, Phantom, Sphere, ct_slices, store_series, wait_for_jobs
from tests.support.reading import Department, reading_server
from tests.support.server import wait_for
from tests.support.vlm import FakeServer, serving
from tests.unit.ai.test_onnx import SEGMENTER, install, threshold_model

MAX_VOXELS = 1_000_000  # the phantoms are 40 x 96 x 96; a 512 x 512 series of 8 is more
METAL = Sphere(centre=(20, 40, 56), radius_mm=6.0, hu=3000)
BLEED = Sphere(centre=(20, 40, 52), radius_mm=10.0, hu=70)


@pytest.fixture(scope="module")
def vlm() -> Iterator[FakeServer]:
    with serving() as fake:
        yield fake


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where an admin installs ONNX models (empty at start: installed while running)."""
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def department(
    tmp_path_factory: pytest.TempPathFactory, dicom_file, models: Path, vlm: FakeServer
) -> Iterator[Department]:
    orthanc = reading_server(
        tmp_path_factory.mktemp("ai"),
        "hounsfield.reading",
        "hounsfield.ai",
        hounsfield_ai__models=str(models),
        hounsfield_ai__remote={"BaseUrl": vlm.url, "Model": "vlm-test", "TimeoutSeconds": 5},
        hounsfield_ai__max_voxels=MAX_VOXELS,
    )
    department = Department(orthanc, dicom_file)
    department.hire("dr-eve", "radiologist")
    department.hire("tech-tom", "technician")
    department.hire("ref-rita", "referrer")
    yield department
    orthanc.stop()


def findings_of(department: Department, study: str, analyses: int) -> dict:
    """The study's findings once ``analyses`` analyses have been stored."""

    def stored() -> dict | None:
        answer = department.call("dr-eve", "GET", f"/api/studies/{study}/findings").json()
        return answer if len(answer["analyses"]) >= analyses else None

    return wait_for(stored, 180, f"{analyses} analyses of study {study}", interval=0.5)


@pytest.fixture(scope="module")
def abdomen(department: Department) -> str:
    phantom = Phantom(spheres=(METAL,))
    return store_series(
        department.orthanc,
        ct_slices(
            phantom.voxels(), phantom.spacing, patient_id="AI-METAL", description="CT abdomen"
        ),
    )


@pytest.fixture(scope="module")
def head(department: Department) -> str:
    phantom = Head(spheres=(BLEED,))
    return store_series(
        department.orthanc,
        ct_slices(
            phantom.voxels(),
            phantom.spacing,
            patient_id="AI-HEAD",
            description="CT head",
            body_part="HEAD",
        ),
    )


def dciodvfy_errors(department: Department, instance: str, folder: Path) -> list[str]:
    path = folder / f"{instance}.dcm"
    path.write_bytes(department.orthanc.get(f"/instances/{instance}/file").content)
    checked = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in checked.stderr.splitlines() if line.startswith("Error")]


def test_metal_is_found_where_it_is_and_stored_as_sr_and_seg(
    department: Department, abdomen: str, tmp_path: Path
) -> None:
    answer = findings_of(department, abdomen, analyses=2)  # the rules: metal and quality on CT
    assert {a["analyzer"] for a in answer["analyses"]} == {"metal", "quality"}
    [metal] = [f for f in answer["findings"] if f["analyzer"] == "metal"]
    spacing = Phantom().spacing
    k, r, c = METAL.centre
    truth = np.array([c * spacing[2], r * spacing[1], k * spacing[0]])  # x, y, z (mm)
    assert np.abs(np.array(metal["location"]["patient"]) - truth).max() <= 2 * max(spacing)
    assert metal["volume_ml"] == pytest.approx(METAL.volume_ml, rel=0.10)
    assert metal["severity"] == "minor" and metal["review"] is None
    assert "foreign body" in answer["summary"]

    analysis = next(a for a in answer["analyses"] if a["analyzer"] == "metal")
    for instance in (analysis["sr"], analysis["seg"]):
        assert dciodvfy_errors(department, instance, tmp_path) == []
    modalities = {
        s["MainDicomTags"]["Modality"]
        for s in department.orthanc.get(f"/studies/{abdomen}/series").json()
    }
    assert modalities == {"CT", "SR", "SEG"}
    row = department.row(abdomen)
    assert "foreign body" in row["aiSummary"] and not row["flagged"]


def test_analysing_again_writes_the_same_objects_and_findings(
    department: Department, abdomen: str
) -> None:
    before = findings_of(department, abdomen, analyses=2)
    instances = len(department.orthanc.get(f"/studies/{abdomen}/instances").json())
    queued = department.call(
        "tech-tom", "POST", f"/api/studies/{abdomen}/analyze", json={"analyzers": ["metal"]}
    )
    assert queued.status_code == 202, queued.text
    [job] = wait_for_jobs(department.orthanc, [j["id"] for j in queued.json()["jobs"]])
    assert job["state"] == "succeeded", job
    after = department.call("dr-eve", "GET", f"/api/studies/{abdomen}/findings").json()
    assert [f["id"] for f in after["findings"]] == [f["id"] for f in before["findings"]]
    assert len(department.orthanc.get(f"/studies/{abdomen}/instances").json()) == instances


def test_a_critical_finding_flags_the_study_until_a_radiologist_reviews_it(
    department: Department, head: str
) -> None:
    answer = findings_of(department, head, analyses=3)  # intracranial, metal, quality
    critical = [f for f in answer["findings"] if f["severity"] == "critical"]
    assert len(critical) == 1, answer["findings"]
    [region] = critical
    assert "needs review" in region["description"]
    assert region["volume_ml"] == pytest.approx(BLEED.volume_ml, rel=0.10)
    row = department.row(head)
    assert (row["priority"], row["flagged"]) == ("stat", True)

    path = f"/api/findings/{region['id']}/review"
    refused = department.call("tech-tom", "POST", path, json={"decision": "confirmed"})
    assert refused.status_code == 403
    assert department.call("ref-rita", "GET", f"/api/studies/{head}/findings").status_code == 403
    modified = department.call(
        "dr-eve",
        "POST",
        path,
        json={"decision": "modified", "notes": "smaller", "changes": {"volume_ml": 3.5}},
    )
    assert modified.status_code == 200, modified.text
    assert modified.json()["review"]["changes"] == {"volume_ml": 3.5}
    confirmed = department.call("dr-eve", "POST", path, json={"decision": "confirmed"})
    assert confirmed.json()["review"]["decision"] == "confirmed"
    history = department.call("dr-eve", "GET", f"/api/findings/{region['id']}").json()["history"]
    assert [(h["decision"], h["by"]) for h in history] == [
        ("modified", "dr-eve"),
        ("confirmed", "dr-eve"),
    ]
    row = department.row(head)
    assert (row["priority"], row["flagged"]) == ("stat", False)  # the flag goes, stat stays
    trail = department.call("admin", "GET", "/api/audit?action=finding.review").json()
    assert [e["detail"].get("decision") for e in trail["entries"]][:2] == ["confirmed", "modified"]


def test_a_series_that_is_not_a_volume_fails_and_other_analyses_go_on(
    department: Department, abdomen: str
) -> None:
    series = department.orthanc.get(f"/studies/{abdomen}/series").json()
    sr = next(s["ID"] for s in series if s["MainDicomTags"]["Modality"] == "SR")
    ct = next(s["ID"] for s in series if s["MainDicomTags"]["Modality"] == "CT")
    queued = department.call(
        "tech-tom",
        "POST",
        f"/api/studies/{abdomen}/analyze",
        json={"analyzers": ["metal", "lung"], "series": [sr, ct]},
    )
    assert queued.status_code == 202, queued.text
    jobs = wait_for_jobs(department.orthanc, [j["id"] for j in queued.json()["jobs"]])
    outcome = {(j["params"]["series"], j["params"]["analyzer"]): j for j in jobs}
    assert "holds no images" in outcome[(sr, "metal")]["error"]
    assert "holds no images" in outcome[(sr, "lung")]["error"]
    assert "no lung" in outcome[(ct, "lung")]["error"]
    assert outcome[(ct, "metal")]["state"] == "succeeded"
    assert department.orthanc.get("/system").status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "complaint"),
    [
        ({"analyzers": ["crystal-ball"]}, 400, "unknown analyzers"),
        ({"series": ["not-a-series"]}, 400, "not series of this study"),
        ({"analyzers": "metal"}, 400, "analyzers"),
        ({"everything": True}, 400, "everything"),
    ],
)
def test_analysis_requests_that_make_no_sense_are_refused(
    department: Department, abdomen: str, body: dict, status: int, complaint: str
) -> None:
    answer = department.call("tech-tom", "POST", f"/api/studies/{abdomen}/analyze", json=body)
    assert answer.status_code == status and complaint in answer.text, answer.text


def test_reviews_that_make_no_sense_are_refused(department: Department, abdomen: str) -> None:
    finding = findings_of(department, abdomen, analyses=2)["findings"][0]["id"]
    path = f"/api/findings/{finding}/review"
    for body, complaint in [
        ({"decision": "maybe"}, "decision"),
        ({"decision": "modified"}, "says what changed"),
        ({"decision": "confirmed", "changes": {"severity": "minor"}}, "'modified' only"),
        ({"decision": "modified", "changes": {"severity": "deadly"}}, "severity"),
    ]:
        answer = department.call("dr-eve", "POST", path, json=body)
        assert answer.status_code == 400 and complaint in answer.text, answer.text
    missing = department.call(
        "dr-eve", "POST", "/api/findings/999999/review", json={"decision": "confirmed"}
    )
    assert missing.status_code == 404


def ct_series(department: Department, study: str) -> str:
    series = department.orthanc.get(f"/studies/{study}/series").json()
    return next(s["ID"] for s in series if s["MainDicomTags"]["Modality"] == "CT")


def analyse(department: Department, study: str, analyzer: str) -> dict:
    """Run ``analyzer`` on the study's CT series now; its job once finished."""
    body = {"analyzers": [analyzer], "series": [ct_series(department, study)]}
    queued = department.call("tech-tom", "POST", f"/api/studies/{study}/analyze", json=body)
    assert queued.status_code == 202, queued.text
    [job] = wait_for_jobs(department.orthanc, [j["id"] for j in queued.json()["jobs"]])
    return job


# A model an admin installs: two classes, voxels above 100 HU the second ("lesion"); the
# volume as it is (no resampling: the shape is the phantom's own).
DESCRIPTOR = {
    **SEGMENTER,
    "Input": {"Shape": [1, 1, 40, 96, 96], "Normalisation": {"Mean": 0, "Std": 1}},
}


def test_an_onnx_model_an_admin_installs_runs_the_whole_way(
    department: Department, abdomen: str, models: Path
) -> None:
    install(models, "lesions", threshold_model([1, 1, "D", "H", "W"]), DESCRIPTOR)
    install(models, "broken", b"not a model at all", DESCRIPTOR)
    offered = department.call("tech-tom", "GET", "/api/ai/analyzers").json()["analyzers"]
    assert {"onnx:lesions", "onnx:broken"} <= set(offered)

    job = analyse(department, abdomen, "onnx:lesions")
    assert job["state"] == "succeeded", job
    findings = department.call("dr-eve", "GET", f"/api/studies/{abdomen}/findings").json()
    [lesion] = [f for f in findings["findings"] if f["analyzer"] == "onnx:lesions"]
    assert lesion["volume_ml"] == pytest.approx(METAL.volume_ml, rel=0.10)
    spacing = Phantom().spacing
    k, r, c = METAL.centre
    truth = np.array([c * spacing[2], r * spacing[1], k * spacing[0]])
    assert np.abs(np.array(lesion["location"]["patient"]) - truth).max() <= 2 * max(spacing)
    [analysis] = [a for a in findings["analyses"] if a["analyzer"] == "onnx:lesions"]
    assert analysis["seg"] and analysis["sr"]

    broken = analyse(department, abdomen, "onnx:broken")
    assert broken["state"] == "failed" and "not an ONNX model" in broken["error"], broken


def test_a_remote_model_sees_pixels_only_and_its_answer_is_checked(
    department: Department, abdomen: str, vlm: FakeServer
) -> None:
    answer = {
        "category": "nodule",
        "description": "Small nodule",
        "severity": "minor",
        "confidence": 0.6,
        "image": 1,
        "x": 56,
        "y": 40,
    }
    vlm.reply(json.dumps({"findings": [answer]}))
    job = analyse(department, abdomen, "remote")
    assert job["state"] == "succeeded", job
    sent = b"".join(request.body for request in vlm.requests)
    study_uid = department.row(abdomen)["studyInstanceUid"]
    for identifier in ("AI-METAL", "PHANTOM", "CT abdomen", study_uid):
        assert identifier.encode() not in sent
    findings = department.call("dr-eve", "GET", f"/api/studies/{abdomen}/findings").json()
    [nodule] = [f for f in findings["findings"] if f["analyzer"] == "remote"]
    spacing = Phantom().spacing
    assert nodule["location"]["patient"][:2] == pytest.approx([56 * spacing[2], 40 * spacing[1]])

    vlm.reply("I cannot help with that.")
    refused = analyse(department, abdomen, "remote")
    assert refused["state"] == "failed" and refused["error"], refused
    again = department.call("dr-eve", "GET", f"/api/studies/{abdomen}/findings").json()
    assert [f["id"] for f in again["findings"]] == [f["id"] for f in findings["findings"]]


def test_a_series_larger_than_the_server_analyses_fails_before_it_is_read(
    department: Department,
) -> None:
    huge = np.zeros((8, 512, 512), np.float32)
    study = store_series(department.orthanc, ct_slices(huge, (1.0, 0.5, 0.5), patient_id="AI-HUGE"))
    job = analyse(department, study, "metal")
    assert job["state"] == "failed" and "more than the 1,000,000" in job["error"], job
