"""Monitoring (monitoring/, README "Monitoring"): a `metrics` service key reads both doors,
/api/metrics counts what happens, and a real Prometheus, configured from
monitoring/prometheus.yml, scrapes a real server and answers every query of the Grafana
dashboard (monitoring/grafana/hounsfield.json)."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.support.server import OrthancServer, free_port, wait_for

REPOSITORY = Path(__file__).resolve().parents[2]
MONITORING = REPOSITORY / "monitoring"
PROMETHEUS_YML = MONITORING / "prometheus.yml"
DASHBOARD = MONITORING / "grafana" / "hounsfield.json"
PROVISIONING = MONITORING / "grafana" / "provisioning"
COMPOSE = REPOSITORY / "docker" / "compose.yaml"
KEY_PATH = "/etc/prometheus/hounsfield-metrics.key"
PROMETHEUS = "/usr/bin/prometheus"
PROMTOOL = "/usr/bin/promtool"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
RUN = secrets.token_hex(3)
PASSWORD = "Monitoring-Pass-1357"


# --- Helpers ------------------------------------------------------------------------------


def families(text: str) -> dict[str, Any]:
    """By family name, as the reference parser reads the text (it fails on a malformed one)."""
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(text: str, sample: str, **labels: str) -> float:
    """The one sample named ``sample`` whose labels include ``labels``."""
    found = [
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]
    assert len(found) == 1, f"{sample}{labels}: {found}"
    return found[0]


def dashboard_panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # a collapsed row holds its panels


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel, Grafana's variables filled in
    as "All" and a few seconds would be."""
    dashboard = json.loads(DASHBOARD.read_text())
    queries = []
    for panel in dashboard_panels(dashboard):
        for target in panel.get("targets", []):
            expr = re.sub(r"\$\{?node\}?", ".*", target["expr"])
            expr = re.sub(r"\$\{?__(rate_)?interval\}?|\$\{?__range\}?", "15s", expr)
            queries.append((panel["title"], expr))
    return queries


def prometheus_configuration(
    tmp_path: Path, *, target: str | None = None, key: str = "hfk_placeholder"
) -> Path:
    """monitoring/prometheus.yml with the key in a file of ours (and, given ``target``, that
    target in every job and a scrape every second)."""
    key_file = tmp_path / "hounsfield-metrics.key"
    key_file.write_text(key + "\n")
    key_file.chmod(0o600)
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    for job in config["scrape_configs"]:
        assert job["authorization"]["credentials_file"] == KEY_PATH, job["job_name"]
        job["authorization"]["credentials_file"] = str(key_file)
        if target is not None:
            job["static_configs"] = [{"targets": [target]}]
    if target is not None:
        config["global"]["scrape_interval"] = "1s"
        config["global"]["evaluation_interval"] = "1s"
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


# --- Fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def people(orthanc: OrthancServer) -> dict[str, str]:
    """An admin and a radiologist of this module's own (never the shared admin): tokens."""
    tokens = {}
    for role in ("admin", "radiologist"):
        name = f"mon-{role}-{RUN}"
        made = orthanc.post(
            "/api/users", json={"username": name, "password": PASSWORD, "role": role}
        )
        assert made.status_code == 201, made.text
        tokens[role] = orthanc.login(name, PASSWORD)
    return tokens


@pytest.fixture(scope="module")
def metrics_key(orthanc: OrthancServer, people: dict[str, str]) -> str:
    """A `metrics` service key, made by an admin as monitoring/prometheus.yml says."""
    made = orthanc.client(people["admin"]).post(
        orthanc.url("/api/keys"),
        json={"name": f"prometheus-{RUN}", "role": "metrics", "service": True, "readOnly": True},
        timeout=10,
    )
    assert made.status_code == 201, made.text
    assert made.json()["role"] == "metrics"
    return made.json()["key"]


@pytest.fixture(scope="module")
def scraper(orthanc: OrthancServer, metrics_key: str) -> requests.Session:
    return orthanc.client(metrics_key)


def scrape(orthanc: OrthancServer, scraper: requests.Session) -> str:
    response = scraper.get(orthanc.url("/api/metrics"), timeout=10)
    assert response.status_code == 200, response.text
    return response.text


# --- The doors ----------------------------------------------------------------------------


def test_the_metrics_key_reads_both_doors_and_nobody_else_does(
    orthanc: OrthancServer, scraper: requests.Session, people: dict[str, str]
) -> None:
    ours = scraper.get(orthanc.url("/api/metrics"), timeout=10)
    assert ours.status_code == 200, ours.text
    assert ours.headers["Content-Type"] == CONTENT_TYPE
    read = families(ours.text)
    expected = {
        "hounsfield_instances_received": "counter",
        "hounsfield_jobs": "gauge",
        "hounsfield_queue_oldest_seconds": "gauge",
        "hounsfield_job_duration_seconds": "summary",
        "hounsfield_jobs_finished": "counter",
        "hounsfield_worker_restarts": "counter",
        "hounsfield_workers_alive": "gauge",
        "hounsfield_login_failures": "counter",
        "hounsfield_storage_free_bytes": "gauge",
        "hounsfield_events_pending": "gauge",
    }
    assert {name: family.type for name, family in read.items()} == expected
    node = orthanc.health()["components"]["orthanc"]["node"]
    assert value(ours.text, "hounsfield_workers_alive", node=node) >= 1
    assert value(ours.text, "hounsfield_storage_free_bytes", node=node) > 0
    assert {s.labels["state"] for s in read["hounsfield_jobs"].samples} == {
        "queued",
        "running",
        "succeeded",
        "failed",
        "cancelled",
    }

    theirs = scraper.get(orthanc.url("/tools/metrics-prometheus"), timeout=10)
    assert theirs.status_code == 200, theirs.text
    orthancs = families(theirs.text)
    assert "orthanc_count_instances" in orthancs
    assert "hounsfield_workers_alive" in orthancs  # the unlabelled gauges metrics.py sets

    radiologist = orthanc.client(people["radiologist"])
    anonymous = orthanc.client()
    for path in ("/api/metrics", "/tools/metrics-prometheus"):
        assert radiologist.get(orthanc.url(path), timeout=10).status_code == 403, path
        refused = anonymous.get(orthanc.url(path), timeout=10).status_code
        assert refused == (401 if path.startswith("/api/") else 403), path
    wrong = orthanc.client("hfk_" + "0" * 43).get(orthanc.url("/api/metrics"), timeout=10)
    assert wrong.status_code == 401


# --- What the figures count ---------------------------------------------------------------


def test_a_refused_sign_in_counts_once(orthanc: OrthancServer, scraper: requests.Session) -> None:
    name = f"mon-forgetful-{RUN}"
    made = orthanc.post(
        "/api/users", json={"username": name, "password": PASSWORD, "role": "technician"}
    )
    assert made.status_code == 201, made.text
    before = value(scrape(orthanc, scraper), "hounsfield_login_failures_total")
    refused = requests.post(
        orthanc.url("/api/auth/login"),
        json={"username": name, "password": PASSWORD + "-wrong"},
        timeout=10,
    )
    assert refused.status_code == 401
    assert value(scrape(orthanc, scraper), "hounsfield_login_failures_total") == before + 1
    orthanc.login(name, PASSWORD)  # a sign-in that works counts nothing
    assert value(scrape(orthanc, scraper), "hounsfield_login_failures_total") == before + 1


def test_stored_instances_are_counted_on_every_road(
    orthanc: OrthancServer, scraper: requests.Session, dicom_file
) -> None:
    node = orthanc.health()["components"]["orthanc"]["node"]
    before = value(scrape(orthanc, scraper), "hounsfield_instances_received_total", node=node)
    by_cstore = [dicom_file("CT_small.dcm"), dicom_file("MR_small.dcm")]
    orthanc.store(*by_cstore)  # C-STORE, one association
    uploaded = orthanc.post("/instances", data=dicom_file("CT_small.dcm").read_bytes())
    assert uploaded.status_code == 200, uploaded.text  # REST: through the plugin's intake
    after = value(scrape(orthanc, scraper), "hounsfield_instances_received_total", node=node)
    assert after == before + 3


def test_a_finished_job_is_counted_and_timed_by_kind(
    orthanc: OrthancServer, scraper: requests.Session
) -> None:
    labels = {"kind": "tests.sleep", "state": "succeeded"}
    text = scrape(orthanc, scraper)
    found = [s for s in families(text)["hounsfield_jobs_finished"].samples if s.labels == labels]
    before = found[0].value if found else 0
    job = orthanc.submit("tests.sleep", seconds=0.3)
    assert orthanc.wait_job(job["id"])["state"] == "succeeded"
    text = scrape(orthanc, scraper)
    assert value(text, "hounsfield_jobs_finished_total", **labels) == before + 1
    p50 = value(text, "hounsfield_job_duration_seconds", kind="tests.sleep", quantile="0.5")
    p95 = value(text, "hounsfield_job_duration_seconds", kind="tests.sleep", quantile="0.95")
    assert 0 <= p50 <= p95
    assert p95 >= 0.3 or p50 < 0.3  # the 0.3 s job is among those timed


# --- The configuration, with the real Prometheus ------------------------------------------


def test_promtool_accepts_the_configuration(tmp_path: Path) -> None:
    checked = subprocess.run(
        [PROMTOOL, "check", "config", str(prometheus_configuration(tmp_path))],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    config = yaml.safe_load(PROMETHEUS_YML.read_text())
    assert config["global"]["scrape_interval"] == "15s"
    paths = {job["job_name"]: job["metrics_path"] for job in config["scrape_configs"]}
    assert paths == {"orthanc": "/tools/metrics-prometheus", "hounsfield": "/api/metrics"}
    for job in config["scrape_configs"]:
        assert job["authorization"] == {"type": "Bearer", "credentials_file": KEY_PATH}
    comments = PROMETHEUS_YML.read_text()
    assert '"role": "metrics", "service": true' in comments  # how to make the key


def test_promtool_finds_nothing_to_lint_in_our_metrics(
    orthanc: OrthancServer, scraper: requests.Session
) -> None:
    linted = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=scrape(orthanc, scraper),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert linted.returncode == 0 and not linted.stdout.strip(), linted.stdout + linted.stderr


def test_compose_and_grafana_read_the_files_where_they_are(tmp_path: Path) -> None:
    """No Docker here: the mounts, provisioning and dashboard agree with one another."""
    compose = yaml.safe_load(COMPOSE.read_text())["services"]
    mounts = {  # source:target[:ro], a source that may be ${VARIABLE:-default}
        name: {
            target: source
            for source, target in (
                re.sub(r":(ro|rw)$", "", entry).rsplit(":", 1) for entry in compose[name]["volumes"]
            )
        }
        for name in ("prometheus", "grafana")
    }
    for name in mounts:
        assert compose[name]["profiles"] == ["monitoring"], name
    assert mounts["prometheus"]["/etc/prometheus/prometheus.yml"] == "../monitoring/prometheus.yml"
    assert mounts["prometheus"][KEY_PATH].startswith("${HOUNSFIELD_METRICS_KEY_FILE:-")
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "hounsfield.yaml").read_text())
    folder = provider["providers"][0]["options"]["path"]
    assert mounts["grafana"][f"{folder}/hounsfield.json"] == "../monitoring/grafana/hounsfield.json"
    assert mounts["grafana"]["/etc/grafana/provisioning"] == "../monitoring/grafana/provisioning"
    source = yaml.safe_load((PROVISIONING / "datasources" / "prometheus.yaml").read_text())
    assert source["datasources"][0]["url"] == "http://prometheus:9090"

    dashboard = json.loads(DASHBOARD.read_text())
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["DS_PROMETHEUS"]["type"] == "datasource"
    assert variables["DS_PROMETHEUS"]["query"] == "prometheus"
    assert variables["node"]["allValue"] == ".*"
    panels = [p for p in dashboard_panels(dashboard) if p["type"] != "row"]
    ids = [p["id"] for p in dashboard_panels(dashboard)]
    assert len(set(ids)) == len(ids), "a panel id each"
    for panel in panels:
        assert panel["targets"], panel["title"]
        for item in (panel, *panel["targets"]):
            assert item["datasource"] == {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}


@pytest.fixture
def prometheus(orthanc: OrthancServer, metrics_key: str, tmp_path: Path) -> Iterator[str]:
    """A real Prometheus scraping the shared server with the metrics key; its base URL."""
    config = prometheus_configuration(
        tmp_path, target=f"127.0.0.1:{orthanc.http_port}", key=metrics_key
    )
    port = free_port()
    log = (tmp_path / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def query(prometheus: str, expr: str) -> dict[str, Any]:
    try:
        response = requests.get(f"{prometheus}/api/v1/query", params={"query": expr}, timeout=5)
    except requests.ConnectionError:
        return {"status": "unreachable", "data": {"result": []}}
    return response.json()


def test_a_real_prometheus_scrapes_both_doors_and_answers_every_dashboard_query(
    orthanc: OrthancServer, scraper: requests.Session, prometheus: str
) -> None:
    # What the figures need to exist: a job finished in the last 15 minutes.
    job = orthanc.submit("tests.sleep", seconds=0)
    orthanc.wait_job(job["id"])
    wait_for(
        lambda: (
            {
                series["metric"]["job"]: series["value"][1]
                for series in query(prometheus, "up")["data"]["result"]
            }
            == {"orthanc": "1", "hounsfield": "1"}
        ),
        20,
        "both scrape jobs up",
        interval=0.25,
    )
    queries = dashboard_queries()
    assert len(queries) >= 15
    unanswered: dict[str, Any] = {}
    deadline = time.monotonic() + 20  # rates and increases need two scrapes
    for title, expr in queries:
        while True:
            answer = query(prometheus, expr)
            if answer["status"] == "success" and answer["data"]["result"]:
                break
            if time.monotonic() > deadline:
                unanswered[f"{title}: {expr}"] = answer
                break
            time.sleep(0.25)
    assert not unanswered, json.dumps(unanswered, indent=1)
    # The node variable's values: the label the per-node panels filter on.
    node = orthanc.health()["components"]["orthanc"]["node"]
    nodes = query(prometheus, "count by (node) (hounsfield_storage_free_bytes)")["data"]["result"]
    assert [series["metric"]["node"] for series in nodes] == [node]
