"""WADO-RS series metadata (PS3.18 10.4.1.1.2), kept ready for the viewer.

OHIF opens a series by asking for its metadata: one DICOM JSON object per instance.
Orthanc's DICOMweb plugin 1.7 answers it by reading every file of the series
(``SeriesMetadata: Full``; ``Extrapolate`` was slower here and ``MainDicomTags`` lacks what
OHIF needs to draw: Rows, the rescale): 211 ms p50 for a 300-slice 512 x 512 CT, up to
600 ms while the viewer fetches frames beside it, the longest request of a warm open
(``bench/viewer.py``). The answer changes only when the series does, so it is kept: written
by a worker when the study becomes stable, checked at every request against the series as
Orthanc has it now (its instances and their last update), answered from a compressed file.

A request that finds nothing kept (a study still arriving, a cache emptied) is answered from
DICOMweb's study metadata, which the plugin does not claim, split by series: the same files
are read once, and every series of the study is kept for the requests that follow.

BulkDataURIs are absolute and name the host the client used: they are kept relative to
DICOMweb's root and completed at each request, as the plugin completes RetrieveURLs.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hounsfield.config import Settings
from hounsfield.dicomweb import ROOT
from hounsfield.dicomweb.model import JSON_TYPE, XML_TYPE, DicomJson, base_url, to_xml, wants_xml
from hounsfield.events.context import EventContext
from hounsfield.jobs.context import JobContext
from hounsfield.orthanc_api import OrthancApi, OrthancError
from hounsfield.untrusted.jsontext import nesting_depth
from hounsfield.web import HttpError, Request, Response

FOLDER = "series-metadata"  # under the plugin's data directory
# Kept in place of DICOMweb's root URL in every BulkDataURI (a scheme of no meaning).
ROOT_MARKER = "hounsfield-dicomweb-root:"
_KEPT_URI = b'"BulkDataURI":"' + ROOT_MARKER.encode()
TRIM_TO = 0.9  # when over its size, the cache drops least recently used series to this


@dataclass(frozen=True)
class SeriesState:
    """A series as Orthanc has it now; ``version`` changes whenever its answer may."""

    id: str  # Orthanc's
    version: str

    @classmethod
    def of(cls, series: dict[str, Any]) -> SeriesState:
        """From Orthanc's JSON of the series: its instances and when it last changed (an
        instance added or replaced moves LastUpdate, one deleted leaves the list)."""
        lines = [series.get("LastUpdate", ""), *sorted(series.get("Instances", []))]
        return cls(series["ID"], hashlib.sha256("\n".join(lines).encode()).hexdigest()[:24])


def series_states(orthanc: OrthancApi, study_id: str) -> dict[str, SeriesState]:
    """Every series of the study, by SeriesInstanceUID."""
    return {
        series["MainDicomTags"].get("SeriesInstanceUID", ""): SeriesState.of(series)
        for series in orthanc.get_json(f"/studies/{study_id}/series")
    }


class SeriesMetadataCache:
    """Series answers as gzip files, ``<study>/<series>.<version>.json.gz`` under ``folder``,
    at most ``max_bytes`` of them (0: nothing kept). Shared by the plugin and its workers:
    files appear by rename, whole or not at all."""

    def __init__(self, folder: Path, max_bytes: int) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self._size: int | None = None  # this process's estimate; measured again when over

    def _path(self, study_id: str, state: SeriesState) -> Path:
        return self.folder / study_id / f"{state.id}.{state.version}.json.gz"

    def has(self, study_id: str, state: SeriesState) -> bool:
        return self._path(study_id, state).is_file()

    def read(self, study_id: str, state: SeriesState) -> bytes | None:
        if self.max_bytes <= 0:
            return None  # turned off: what an earlier setting kept is not read either
        path = self._path(study_id, state)
        try:
            compressed = path.read_bytes()
            os.utime(path)  # recently used: the last to be dropped
        except FileNotFoundError:
            return None
        return gzip.decompress(compressed)

    def keep(self, study_id: str, state: SeriesState, text: bytes) -> None:
        if self.max_bytes <= 0:
            return
        if self._size is None:
            self._size = self._measure()
        folder = self.folder / study_id
        with contextlib.suppress(FileNotFoundError):  # the folder, forgotten meanwhile
            for older in folder.glob(f"{state.id}.*.json.gz"):
                self._size -= _size_of(older)
                older.unlink(missing_ok=True)
        compressed = gzip.compress(text, compresslevel=1)
        partial = folder / f".{uuid.uuid4().hex}.partial"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(compressed)
            os.replace(partial, self._path(study_id, state))
        except (FileNotFoundError, FileExistsError):  # the study deleted and forgotten meanwhile
            partial.unlink(missing_ok=True)
            return
        self._size += len(compressed)
        if self._size > self.max_bytes:
            self._trim()

    def forget(self, study_id: str) -> None:
        """A deleted study's series."""
        folder = self.folder / study_id
        with contextlib.suppress(FileNotFoundError):  # forgotten by another process too
            for path in folder.glob("*"):
                path.unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # absent, or a worker wrote into it meanwhile
            folder.rmdir()

    def _files(self) -> Iterator[os.DirEntry[str]]:
        if not self.folder.is_dir():
            return
        for study in os.scandir(self.folder):
            if study.is_dir():
                try:
                    files = [
                        entry
                        for entry in os.scandir(study.path)
                        if entry.is_file() and not entry.name.startswith(".")  # not partials
                    ]
                except FileNotFoundError:  # a deleted study's folder, removed meanwhile
                    continue
                yield from files

    def _measure(self) -> int:
        return sum(_size_of(entry) for entry in self._files())

    def _trim(self) -> None:
        entries = []  # (last used, size, path) of the files still there
        for entry in self._files():
            with contextlib.suppress(FileNotFoundError):
                found = entry.stat()
                entries.append((found.st_mtime, found.st_size, entry.path))
        entries.sort()
        size = sum(entry[1] for entry in entries)
        for _, bytes_, path in entries:
            if size <= self.max_bytes * TRIM_TO:
                break
            size -= bytes_
            Path(path).unlink(missing_ok=True)
        self._size = size


def _size_of(file: Path | os.DirEntry[str]) -> int:
    """A file's size, 0 once it is gone: the plugin's threads and the workers replace and
    trim the same folder, so a file listed a moment ago may have been removed since (seen
    as a 500 on a viewer's series metadata while a worker was writing the same series)."""
    try:
        return file.stat().st_size
    except FileNotFoundError:
        return 0


@functools.cache
def _cache_at(folder: Path, max_bytes: int) -> SeriesMetadataCache:
    return SeriesMetadataCache(folder, max_bytes)


def cache_for(settings: Settings) -> SeriesMetadataCache:
    """The cache of the plugin's data directory: one object in a process, so that its size
    estimate is shared by the routes and the event handlers."""
    return _cache_at(settings.data_directory / FOLDER, settings.plugin.viewer_cache_mb << 20)


def _relocate(dataset: DicomJson) -> None:
    """BulkDataURIs made relative to DICOMweb's root (``ROOT_MARKER`` in its place)."""
    for item in dataset.values():
        uri = item.get("BulkDataURI")
        if isinstance(uri, str) and ROOT in uri:
            item["BulkDataURI"] = ROOT_MARKER + uri.split(ROOT, 1)[1]
        if item.get("vr") == "SQ":
            for nested in item.get("Value", []):
                _relocate(nested)


def keep_study(
    cache: SeriesMetadataCache,
    study_id: str,
    states: dict[str, SeriesState],
    study_metadata: bytes,
    max_depth: int,
) -> dict[str, bytes]:
    """DICOMweb's metadata of a whole study, split into its series' answers and kept;
    those answers (BulkDataURIs relative), by SeriesInstanceUID.

    ``states`` must be read before the metadata: a series that changed in between is then
    kept under its older version, and the next request computes it again."""
    if nesting_depth(study_metadata) > max_depth:
        raise HttpError(502, f"the study's metadata nests deeper than {max_depth} levels")
    series: dict[str, list[DicomJson]] = {}
    for instance in json.loads(study_metadata):
        _relocate(instance)
        uid = (instance.get("0020000E", {}).get("Value") or [""])[0]
        series.setdefault(uid, []).append(instance)
    answers = {}
    for uid, instances in series.items():
        answers[uid] = json.dumps(instances, ensure_ascii=True, separators=(",", ":")).encode()
        if uid in states:
            cache.keep(study_id, states[uid], answers[uid])
    return answers


def json_depth_for(dicom_depth: int) -> int:
    """The JSON nesting of DICOM JSON with ``dicom_depth`` nested sequences: the list and
    the instance, then an attribute, its Value and an item per sequence, and a last value."""
    return 2 + 3 * dicom_depth + 2


def _absolute(text: bytes, base: str) -> bytes:
    escaped = json.dumps(base, ensure_ascii=True)[1:-1].encode()  # a Host header is untrusted
    return text.replace(_KEPT_URI, b'"BulkDataURI":"' + escaped)


def series_metadata(request: Request, study_uid: str, series_uid: str) -> Response:
    xml = wants_xml(request)
    services = request.services
    orthanc = services.orthanc
    study_id = orthanc.find_study(study_uid)
    states = series_states(orthanc, study_id) if study_id else {}
    state = states.get(series_uid)
    if study_id is None or state is None:
        raise HttpError(404, f"no series {series_uid} in study {study_uid}")
    settings = services.settings
    cache = cache_for(settings)
    text = cache.read(study_id, state)
    if text is None:
        study_metadata = orthanc.get_from_plugins(f"{ROOT}studies/{study_uid}/metadata")
        depth = json_depth_for(settings.plugin.limits.dicom_depth)
        text = keep_study(cache, study_id, states, study_metadata, depth).get(series_uid)
        if text is None:
            raise HttpError(404, f"no series {series_uid} in study {study_uid}")
    text = _absolute(text, base_url(request, settings.orthanc_config.get("DicomWeb", {}), ROOT))
    if xml:
        return Response(200, content_type=XML_TYPE, parts=map(to_xml, json.loads(text)))
    return Response(200, text, JSON_TYPE)


KEEP_READY = "dicomweb.series-metadata"  # the job that keeps a stable study's series


def keep_ready(job: JobContext, cache: SeriesMetadataCache, max_depth: int) -> dict[str, Any]:
    """In a worker: every series of the study kept, unless it already is as it stands."""
    study_id = job.params["study"]
    try:
        tags = job.orthanc.get_json(f"/studies/{study_id}")["MainDicomTags"]
        states = series_states(job.orthanc, study_id)
    except OrthancError as error:
        if error.status == 404:
            return {"series": 0}  # deleted meanwhile
        raise
    if all(cache.has(study_id, state) for state in states.values()):
        return {"series": 0}
    metadata = job.orthanc.get_bytes(f"{ROOT}studies/{tags['StudyInstanceUID']}/metadata")
    return {"series": len(keep_study(cache, study_id, states, metadata, max_depth))}


def study_stable(context: EventContext) -> None:
    context.enqueue(KEEP_READY, {"study": context.event.resource_id})


def study_deleted(context: EventContext, cache: SeriesMetadataCache) -> None:
    cache.forget(context.event.resource_id)
