"""The routes of the DICOMweb URIs the plugin answers (see the package's docstring)."""

from __future__ import annotations

from hounsfield.dicomweb import ROOT
from hounsfield.dicomweb.qido import search_studies
from hounsfield.dicomweb.retrieve import retrieve_study
from hounsfield.dicomweb.stow import store_parts
from hounsfield.web import Request, Response, RouteTable

routes = RouteTable()


@routes.get(ROOT + "studies")
def get_studies(request: Request) -> Response:
    return search_studies(request, ROOT)


@routes.post(ROOT + "studies")
def post_studies(request: Request) -> Response:
    return store_parts(request, ROOT, None)


@routes.get(ROOT + "studies/{study_uid}")
def get_study(request: Request) -> Response:
    return retrieve_study(request, request.path_params["study_uid"])


@routes.post(ROOT + "studies/{study_uid}")
def post_study(request: Request) -> Response:
    return store_parts(request, ROOT, request.path_params["study_uid"])
