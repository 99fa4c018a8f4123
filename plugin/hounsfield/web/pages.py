"""Our own pages, served from the repository's ``html/`` folder (only the files listed)."""

from __future__ import annotations

from pathlib import Path

from hounsfield.web.http import HttpError, Request, Response
from hounsfield.web.router import RouteTable

PAGES_DIRECTORY = Path(__file__).resolve().parents[3] / "html"
LOGIN_ASSETS = {
    "login.css": "text/css; charset=utf-8",
    "login.js": "text/javascript",
    "session.js": "text/javascript",  # keeps signed-in pages signed in (viewer, Explorer)
}

routes = RouteTable()


def page_file(name: str) -> bytes:
    return (PAGES_DIRECTORY / name).read_bytes()


@routes.get("/login")
def login_page(request: Request) -> Response:
    response = Response(200, page_file("login.html"), "text/html; charset=utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response


@routes.get("/login/{asset}")
def login_asset(request: Request) -> Response:
    name = request.path_params["asset"]
    if name not in LOGIN_ASSETS:
        raise HttpError(404, f"no such file: {name}")
    return Response(200, page_file(name), LOGIN_ASSETS[name])
