"""Our own pages, served from the repository's ``html/`` folder (only the files listed),
and what a browser without a session gets on any of our pages: the sign-in page."""

from __future__ import annotations

import html
from pathlib import Path
from urllib.parse import urlencode

from hounsfield.web.http import HttpError, Request, Response
from hounsfield.web.router import RouteTable

PAGES_DIRECTORY = Path(__file__).resolve().parents[3] / "html"
LOGIN_ASSETS = {
    "login.css": "text/css; charset=utf-8",
    "login.js": "text/javascript",
    "session.js": "text/javascript",  # keeps signed-in pages signed in (viewer, Explorer)
}

RECON_ASSETS = {"recon.js": "text/javascript", "recon.css": "text/css; charset=utf-8"}
# Paths our callbacks answer with pages: a refused visitor is sent to sign in there.
PAGE_PREFIXES = ("/ohif", "/recon")

routes = RouteTable()


def is_page(path: str) -> bool:
    return any(path == prefix or path.startswith(prefix + "/") for prefix in PAGE_PREFIXES)


def sign_in_page(request: Request) -> Response:
    """What a browser gets on one of our pages without a session: off to the sign-in page."""
    target = request.path + (f"?{urlencode(request.query)}" if request.query else "")
    next_page = html.escape("/login?" + urlencode({"next": target}))
    body = (
        "<!doctype html><meta charset=utf-8><title>Sign in</title>"
        f'<meta http-equiv="refresh" content="0; url={next_page}">'
        f'<p>Please <a href="{next_page}">sign in</a>.</p>'
    ).encode()
    return Response(401, body, "text/html; charset=utf-8", headers={"Cache-Control": "no-store"})


def page_file(name: str) -> bytes:
    return (PAGES_DIRECTORY / name).read_bytes()


def _page(name: str) -> Response:
    """An HTML page of ours: never cached, so a new version shows at once."""
    return Response(
        200, page_file(name), "text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
    )


def _asset(request: Request, listed: dict[str, str]) -> Response:
    name = request.path_params["asset"]
    if name not in listed:
        raise HttpError(404, f"no such file: {name}")
    return Response(200, page_file(name), listed[name])


@routes.get("/login")
def login_page(request: Request) -> Response:
    return _page("login.html")


@routes.get("/login/{asset}")
def login_asset(request: Request) -> Response:
    return _asset(request, LOGIN_ASSETS)


@routes.get("/recon")
def recon_page(request: Request) -> Response:
    """Technicians' reconstruction page: runs of a projection series, new runs, their QC."""
    return _page("recon.html")


@routes.get("/recon/{asset}")
def recon_asset(request: Request) -> Response:
    return _asset(request, RECON_ASSETS)
