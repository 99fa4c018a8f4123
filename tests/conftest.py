"""Fixtures: one shared Orthanc for the session, fresh ones for tests that kill it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pydicom
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from hounsfield.db.cluster import ThrowawayCluster
from tests.support.fhir import FhirServer
from tests.support.server import OrthancServer, free_port


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[ThrowawayCluster]:
    """One throwaway PostgreSQL for the session (about 1.3 s to make); each test that
    uses it takes a database of its own."""
    cluster = ThrowawayCluster().start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def hospital() -> Iterator[FhirServer]:
    """The hospital's FHIR server, which the shared Orthanc's HIS extension asks."""
    with FhirServer() as server:
        yield server


@pytest.fixture(scope="session")
def orthanc(
    tmp_path_factory: pytest.TempPathFactory, hospital: FhirServer
) -> Iterator[OrthancServer]:
    server = OrthancServer(
        tmp_path_factory.mktemp("orthanc-shared"),
        hounsfield__workers=2,
        hounsfield__extensions=[
            "tests.support.extension",
            "hounsfield.recon",
            "hounsfield.reading",
            "hounsfield.ai",
            "hounsfield.his",
            "hounsfield.admin",
            "hounsfield.structures",
        ],
        # On demand only: CT series stored by other tests are not analysed behind them.
        hounsfield_ai__automatic=False,
        # The hospital: its FHIR server (short timeouts: outages are tested) and an MLLP port.
        hounsfield_his__fhir__base_url=hospital.base_url,
        hounsfield_his__fhir__timeout_seconds=1,
        hounsfield_his__fhir__retries=1,
        hounsfield_his__fhir__backoff_seconds=0.1,
        hounsfield_his__fhir__deadline_seconds=2.5,
        hounsfield_his__fhir__poll_seconds=1,
        hounsfield_his__mllp__port=free_port(),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_orthanc(tmp_path: Path) -> Iterator[Callable[..., OrthancServer]]:
    """Start dedicated servers (stopped at the end); settings as for ``OrthancServer``."""
    servers: list[OrthancServer] = []
    counter = itertools.count()

    def make(**settings: object) -> OrthancServer:
        server = OrthancServer(tmp_path / f"orthanc-{next(counter)}", **settings)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def dicom_file(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """A DICOM file shipped with pydicom (real CT, MR... objects), copied with study, series
    and instance UIDs of its own (and any attributes given, e.g. ``PatientName=...``):
    pydicom's MR_small and MR_small_RLE share every UID, and two tests storing them into the
    shared server would otherwise read each other's objects."""
    folder = tmp_path_factory.mktemp("samples")
    counter = itertools.count()

    def copy(name: str, **attributes: str) -> Path:
        ds = pydicom.dcmread(get_testdata_file(name))
        ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        for keyword, value in attributes.items():
            setattr(ds, keyword, value)
        path = folder / f"{next(counter)}-{name}"
        ds.save_as(path, enforce_file_format=True)
        return path

    return copy
