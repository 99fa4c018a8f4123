"""The series metadata cache: files, versions, size; and the JSON depth DICOM can reach."""

from __future__ import annotations

import concurrent.futures
import gzip
import json
import os
from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from hounsfield.dicomweb.series_metadata import (
    SeriesMetadataCache,
    SeriesState,
    json_depth_for,
    keep_study,
)
from hounsfield.untrusted.jsontext import nesting_depth
from hounsfield.web import HttpError


def state(series: str, instances: list[str], last_update: str = "20261124T101010") -> SeriesState:
    return SeriesState.of({"ID": series, "Instances": instances, "LastUpdate": last_update})


def test_a_version_names_the_instances_and_the_last_update() -> None:
    one = state("s", ["a", "b"])
    assert state("s", ["b", "a"]) == one  # Orthanc's order does not matter
    assert state("s", ["a", "b", "c"]).version != one.version
    assert state("s", ["a"]).version != one.version
    assert state("s", ["a", "b"], "20261124T101011").version != one.version


def test_a_series_is_kept_under_one_version_at_a_time(tmp_path: Path) -> None:
    cache = SeriesMetadataCache(tmp_path, 1 << 20)
    old, new = state("s", ["a"]), state("s", ["a", "b"])
    cache.keep("study", old, b"[1]")
    assert cache.read("study", old) == b"[1]" and cache.read("study", new) is None
    cache.keep("study", new, b"[1,2]")
    assert cache.read("study", new) == b"[1,2]" and cache.read("study", old) is None
    assert len(list((tmp_path / "study").iterdir())) == 1
    cache.forget("study")
    assert not (tmp_path / "study").exists()


def test_over_its_size_the_least_recently_read_go_first(tmp_path: Path) -> None:
    noise = os.urandom(40_000)  # does not compress: each file is about 40 kB
    cache = SeriesMetadataCache(tmp_path, 150_000)
    states = [state(f"s{n}", ["a"]) for n in range(4)]
    for number, item in enumerate(states[:3]):
        cache.keep("study", item, noise)
        path = next((tmp_path / "study").glob(f"s{number}.*"))
        os.utime(path, (1000 + number, 1000 + number))  # kept in order, seconds apart
    assert cache.read("study", states[0]) == noise  # read: now the most recent
    cache.keep("study", states[3], noise)  # 160 kB: over, trimmed to 90 % (135 kB)
    assert [cache.read("study", item) is not None for item in states] == [True, False, True, True]
    total = sum(path.stat().st_size for path in (tmp_path / "study").iterdir())
    assert total <= 150_000 * 0.9


def test_nothing_is_kept_or_read_with_no_room(tmp_path: Path) -> None:
    cache = SeriesMetadataCache(tmp_path, 0)
    cache.keep("study", state("s", ["a"]), b"[]")
    assert not tmp_path.joinpath("study").exists()
    SeriesMetadataCache(tmp_path, 1 << 20).keep("study", state("s", ["a"]), b"[]")
    assert cache.read("study", state("s", ["a"])) is None  # kept before it was turned off


def nested(depth: int) -> Dataset:
    """A dataset with ``depth`` sequences each inside the previous one's item."""
    inner = Dataset()
    inner.CodeMeaning = "deepest"
    for _ in range(depth):
        outer = Dataset()
        outer.ContentSequence = Sequence([inner])
        inner = outer
    return inner


@pytest.mark.parametrize("depth", [0, 1, 5, 32])
def test_the_json_depth_allowed_is_the_depth_dicom_json_reaches(depth: int) -> None:
    """pydicom writes the DICOM JSON (PS3.18 F.2), as a study metadata answer holds it."""
    answer = json.dumps([nested(depth).to_json_dict()]).encode()
    assert nesting_depth(answer) <= json_depth_for(depth)
    assert nesting_depth(answer) > json_depth_for(depth - 1) if depth else True


def test_a_study_nested_deeper_than_what_is_stored_is_refused_before_it_is_parsed(
    tmp_path: Path,
) -> None:
    answer = json.dumps([nested(40).to_json_dict()]).encode()
    cache = SeriesMetadataCache(tmp_path, 1 << 20)
    with pytest.raises(HttpError) as refused:
        keep_study(cache, "study", {}, answer, json_depth_for(32))
    assert refused.value.status == 502
    assert not list(tmp_path.iterdir())


def test_bulk_data_uris_are_kept_relative_to_the_root_at_every_depth(tmp_path: Path) -> None:
    uri = "http://host:8042/dicom-web/studies/1/series/2/instances/3/bulk/"
    item = {"00091001": {"vr": "OB", "BulkDataURI": uri + "00091001"}}
    instance = {
        "0020000E": {"vr": "UI", "Value": ["2"]},
        "00400275": {"vr": "SQ", "Value": [item]},
        "7FE00010": {"vr": "OW", "BulkDataURI": uri + "7fe00010"},
    }
    series = state("s", ["a"])
    answers = keep_study(
        SeriesMetadataCache(tmp_path, 1 << 20),
        "study",
        {"2": series},
        json.dumps([instance]).encode(),
        10,
    )
    text = answers["2"].decode()
    assert "http://host:8042" not in text
    assert text.count("hounsfield-dicomweb-root:studies/1/series/2/instances/3/bulk/") == 2
    kept = next((tmp_path / "study").iterdir())
    assert gzip.decompress(kept.read_bytes()) == answers["2"]


def _keep_and_trim(folder: str, rounds: int) -> None:
    """One process of several sharing a cache folder: the same series over and over, in a
    cache small enough that every keep trims."""
    cache = SeriesMetadataCache(Path(folder), 20_000)
    noise = os.urandom(4_000)
    for number in range(rounds):
        cache.keep("study", state(f"s{number % 7}", [str(number)]), noise)
        cache.keep(f"study{number % 3}", state("s", [str(number)]), noise)
        if number % 50 == 0:
            cache.forget(f"study{number % 3}")


def test_processes_sharing_the_folder_never_trip_over_each_others_files(tmp_path: Path) -> None:
    # The plugin's HTTP threads and the workers keep, replace, trim and forget in one folder.
    with concurrent.futures.ProcessPoolExecutor(4) as pool:
        done = [pool.submit(_keep_and_trim, str(tmp_path), 400) for _ in range(4)]
        for future in done:
            future.result()  # raises what a process raised
    assert sum(path.stat().st_size for path in tmp_path.rglob("*.json.gz")) <= 20_000 + 4 * 4_100
