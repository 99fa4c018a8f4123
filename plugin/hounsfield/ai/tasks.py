"""The ``ai.analyze`` job: one analyzer on one series, results into the study and our tables.

Run in a worker: reading a 300-slice series, the analysis and the SEG take seconds to tens
of seconds, and a model may misbehave. A job that fails says why (``AnalysisError``: not a
volume, a broken model, a remote model's malformed answer) and nothing is written; other
analyzers of the same series are other jobs and go on. The objects' UIDs derive from the
analyzer, its version and the series: a job that runs again after a crash stores the same
SR and SEG (Orthanc keeps one copy) and updates the same findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from hounsfield.ai.catalogue import build_analyzer
from hounsfield.ai.dicom import result_objects
from hounsfield.ai.model import AnalysisError
from hounsfield.ai.settings import AiSettings
from hounsfield.ai.store import Findings, Summary
from hounsfield.api import JobContext
from hounsfield.dicom_objects import encode
from hounsfield.reading.worklist import Worklist
from hounsfield.volume import LoadedSeries, VolumeError, load_series


class AnalyzeParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    study: str  # Orthanc's identifiers
    series: str
    analyzer: str


@dataclass
class _LastSeries:
    """The series this worker read last: the next analyzer of the same series (queued
    right behind it) skips reading and decoding it again."""

    series: str = ""
    loaded: LoadedSeries | None = None


_last = _LastSeries()


def _load(job: JobContext, series: str, settings: AiSettings) -> LoadedSeries:
    if _last.loaded is not None and _last.series == series:
        return _last.loaded
    _last.loaded = None  # free the previous volume before reading the next
    job.progress(2, "reading the series")
    try:
        loaded = load_series(job.orthanc, series, max_voxels=settings.max_voxels)
    except VolumeError as error:  # the job fails as any analysis does: "AnalysisError: why"
        raise AnalysisError(str(error)) from error
    _last.series, _last.loaded = series, loaded
    return loaded


def analyze(job: JobContext, settings: AiSettings) -> dict[str, Any]:
    params = AnalyzeParams.model_validate(job.params)
    analyzer = build_analyzer(settings, params.analyzer)
    loaded = _load(job, params.series, settings)
    job.progress(30, f"analysing ({params.analyzer})")
    analysis = analyzer.analyze(loaded.volume)
    job.progress(70, "storing the results")
    volume = loaded.volume
    objects = result_objects(
        volume,
        loaded.sources,
        analysis,
        uid_seed=f"ai:{analysis.analyzer}:{analysis.version}:{volume.series_uid}",
    )
    stored = {
        kind: job.orthanc.store(encode(dataset))["ID"] if dataset is not None else None
        for kind, dataset in (("sr", objects.sr), ("seg", objects.seg))
    }
    findings = Findings(job.database)
    rows = findings.record(
        params.study,
        params.series,
        volume,
        analysis,
        job_id=job.job.id,
        sr_instance=stored["sr"],
        seg_instance=stored["seg"],
    )
    summary = Summary.of(rows)
    Worklist(job.database).annotate(params.study, summary.text, flagged=summary.awaiting_review)
    return {
        "analyzer": analysis.analyzer,
        "version": analysis.version,
        "series": params.series,
        "findings": len(analysis.findings),
        "critical": sum(f.severity == "critical" for f in analysis.findings),
        "sr": stored["sr"],
        "seg": stored["seg"],
        "summary": summary.text,
    }
