"""Health answers for every component, and the figures reach Prometheus."""

from __future__ import annotations

import requests

from tests.support.server import OrthancServer, wait_for


def test_health_lists_every_component(orthanc: OrthancServer) -> None:
    response = orthanc.get("/api/health")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    components = report["components"]
    assert set(components) == {
        "orthanc",
        "database",
        "storage",
        "workers",
        "queue",
        "events",
        "dicomweb",
    }
    assert all(component["healthy"] for component in components.values())
    assert components["workers"]["configured"] == 2
    assert components["workers"]["alive"] == 2
    assert components["storage"]["freeBytes"] > 0
    assert components["database"]["migrations"] >= 2


def test_without_an_account_health_says_only_what_a_load_balancer_needs(
    orthanc: OrthancServer,
) -> None:
    """Paths, free bytes and worker PIDs go to admins and the metrics role only."""
    detailed = orthanc.get("/api/health").json()  # as admin
    anonymous = requests.get(orthanc.url("/api/health"), timeout=10)
    assert anonymous.status_code == 200
    assert anonymous.json() == {
        "status": detailed["status"],
        "components": {name: {"healthy": True} for name in detailed["components"]},
    }
    password = "Scraper-Pass-8642"
    user = {"username": "health-scraper", "password": password, "role": "metrics"}
    assert orthanc.post("/api/users", json=user).status_code == 201
    scraper = requests.get(
        orthanc.url("/api/health"), auth=("health-scraper", password), timeout=10
    ).json()
    assert scraper["components"]["workers"]["workers"] and scraper["components"]["storage"]["path"]
    wrong = requests.get(orthanc.url("/api/health"), auth=("health-scraper", "no"), timeout=10)
    assert wrong.json()["components"]["storage"] == {"healthy": True}


def test_queue_figures_are_published_as_metrics(orthanc: OrthancServer) -> None:
    orthanc.wait_job(orthanc.submit("tests.sleep", seconds=0)["id"])
    succeeded = orthanc.health()["components"]["queue"]["jobs"]["succeeded"]

    def published() -> dict[str, float]:
        text = orthanc.get("/tools/metrics-prometheus").text
        figures = {}
        for line in text.splitlines():
            if line.startswith("hounsfield_"):
                name, value = line.split()[:2]
                figures[name] = float(value)
        return figures if figures.get("hounsfield_jobs_succeeded", 0) >= succeeded else {}

    figures = wait_for(published, 10, "metrics to be published")
    assert figures["hounsfield_workers_alive"] == 2
    assert {
        "hounsfield_jobs_queued",
        "hounsfield_jobs_running",
        "hounsfield_jobs_failed",
        "hounsfield_queue_oldest_seconds",
        "hounsfield_events_pending",
    } <= set(figures)


def test_low_disk_space_makes_health_503(make_orthanc) -> None:
    orthanc = make_orthanc(hounsfield__minimum_free_space_mb=1 << 40).start()
    response = orthanc.get("/api/health")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "unhealthy"
    assert report["components"]["storage"]["healthy"] is False
    assert report["components"]["database"]["healthy"] is True


def test_health_says_when_stow_would_be_answered_by_orthancs_dicomweb(make_orthanc) -> None:
    """Without the route-claims plugin, DICOMweb 1.7 answers STOW-RS (and lists refused
    objects as stored): health says so, and how to fix it."""
    plugins = "/usr/share/orthanc/plugins/"
    orthanc = make_orthanc(
        plugins=[plugins + "libOrthancPython.so", plugins + "libOrthancDicomWeb.so"]
    ).start()
    response = orthanc.get("/api/health")
    assert response.status_code == 503
    dicomweb = response.json()["components"]["dicomweb"]
    assert dicomweb["healthy"] is False
    assert "libHounsfieldRouteClaims.so" in dicomweb["problem"]
