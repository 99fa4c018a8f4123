"""The routes of the DICOMweb URIs the plugin answers (see the package's docstring)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from hounsfield.auth.permissions import ACQUISITION, READERS, Study, StudyRef
from hounsfield.config import load_settings
from hounsfield.dicomweb import ROOT
from hounsfield.dicomweb.qido import search_studies
from hounsfield.dicomweb.retrieve import retrieve_study
from hounsfield.dicomweb.series_metadata import (
    KEEP_READY,
    cache_for,
    json_depth_for,
    keep_ready,
    series_metadata,
    study_deleted,
    study_stable,
)
from hounsfield.dicomweb.stow import store_parts
from hounsfield.events.types import Event
from hounsfield.web import Request, Response, RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

routes = RouteTable()


# A referrer may search for one linked study by its UID: that is how a viewer (OHIF) opens
# a study from a link. Any other search stays with staff.
@routes.get(
    ROOT + "studies",
    roles=READERS,
    audit="patient.search",
    study=Study(StudyRef.STUDY_UID, "?StudyInstanceUID"),
    referrer_query=("StudyInstanceUID", "limit", "offset", "fuzzymatching", "includefield"),
)
def get_studies(request: Request) -> Response:
    return search_studies(request, ROOT)


@routes.post(ROOT + "studies", roles=ACQUISITION, audit="study.store")
def post_studies(request: Request) -> Response:
    return store_parts(request, ROOT, None)


@routes.get(
    ROOT + "studies/{study_uid}",
    roles=READERS,
    audit="study.view",
    study=Study(StudyRef.STUDY_UID, "study_uid"),
)
def get_study(request: Request) -> Response:
    return retrieve_study(request, request.path_params["study_uid"])


@routes.post(ROOT + "studies/{study_uid}", roles=ACQUISITION, audit="study.store")
def post_study(request: Request) -> Response:
    return store_parts(request, ROOT, request.path_params["study_uid"])


@routes.get(
    ROOT + "studies/{study_uid}/series/{series_uid}/metadata",
    roles=READERS,
    audit="study.view",
    study=Study(StudyRef.STUDY_UID, "study_uid"),
)
def get_series_metadata(request: Request) -> Response:
    return series_metadata(
        request, request.path_params["study_uid"], request.path_params["series_uid"]
    )


def register(registry: Registry) -> None:
    """Core: the DICOMweb routes the plugin answers itself, and the series metadata it
    keeps ready for the viewer."""
    registry.routes(routes)
    settings = load_settings(dict(registry.configuration))
    cache = cache_for(settings)
    depth = json_depth_for(settings.plugin.limits.dicom_depth)
    registry.job_kind(KEEP_READY, functools.partial(keep_ready, cache=cache, max_depth=depth))
    if cache.max_bytes > 0:  # ViewerCacheMB 0: nothing is kept, so nothing is prepared
        registry.on(Event.STUDY_STABLE, study_stable, name="dicomweb.series_metadata")
    registry.on(
        Event.STUDY_DELETED,
        functools.partial(study_deleted, cache=cache),
        name="dicomweb.series_metadata_deleted",
    )
