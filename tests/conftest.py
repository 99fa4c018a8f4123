"""Fixtures: one shared Orthanc for the session, fresh ones for tests that kill it."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file

from tests.support.server import OrthancServer


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    server = OrthancServer(
        tmp_path_factory.mktemp("orthanc-shared"),
        hounsfield__workers=2,
        hounsfield__extensions=["tests.support.extension", "hounsfield.recon"],
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
def dicom_file() -> Callable[[str], Path]:
    """DICOM files shipped with pydicom (real CT, MR... objects)."""
    return lambda name: Path(get_testdata_file(name))
