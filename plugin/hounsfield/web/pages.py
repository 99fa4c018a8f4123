"""Pages: files served from a folder (only those listed) behind the gate, the sign-in page
among them, the words of every page in each language, and what a browser without a session
gets on any page: the sign-in page."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlencode

from hounsfield.auth.roles import Role
from hounsfield.i18n import REFERENCE, best_language, catalogue, language_names
from hounsfield.web.http import HttpError, Request, Response
from hounsfield.web.router import RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

PAGES_DIRECTORY = Path(__file__).resolve().parents[3] / "html"
LOGIN_ASSETS = {
    "login.css": "text/css; charset=utf-8",
    "pages.css": "text/css; charset=utf-8",  # the look all our pages share
    "login.js": "text/javascript",
    "session.js": "text/javascript",  # keeps signed-in pages signed in (viewer, Explorer)
    "i18n.js": "text/javascript",  # translates every page of ours, the sign-in page first
}
PAGES_CATALOGUE = PAGES_DIRECTORY / "i18n"  # the words of all our pages, one file a language

routes = RouteTable()


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


def _page(path: Path) -> Response:
    """An HTML page: never cached, so a new version shows at once."""
    return Response(
        200, path.read_bytes(), "text/html; charset=utf-8", headers={"Cache-Control": "no-store"}
    )


def _asset(request: Request, folder: Path, listed: Mapping[str, str]) -> Response:
    name = request.path_params["asset"]
    if name not in listed:
        raise HttpError(404, f"no such file: {name}")
    if listed[name].startswith("text/html"):
        return _page(folder / name)  # a second page of the feature: never cached either
    return Response(200, (folder / name).read_bytes(), listed[name])


def page_routes(
    prefix: str,
    folder: Path,
    index: str | None,
    assets: Mapping[str, str],
    roles: Iterable[Role],
) -> RouteTable:
    """A page at ``prefix`` (the HTML file ``index``; None: no page, files only) and its
    ``assets`` (file name: content type) at ``prefix/<name>``, all from ``folder``, for
    ``roles``."""
    table, allowed = RouteTable(), frozenset(roles)

    if index is not None:

        @table.get(prefix, roles=allowed, page=True)
        def page(request: Request) -> Response:
            return _page(folder / index)

    @table.get(prefix + "/{asset}", roles=allowed, page=True)
    def asset(request: Request) -> Response:
        return _asset(request, folder, assets)

    return table


@routes.get("/login", open=True)
def login_page(request: Request) -> Response:
    return _page(PAGES_DIRECTORY / "login.html")


@routes.get("/login/{asset}", open=True)
def login_asset(request: Request) -> Response:
    return _asset(request, PAGES_DIRECTORY, LOGIN_ASSETS)


@routes.get("/favicon.ico", open=True)  # browsers ask for it on every page, signed in or not
def favicon(request: Request) -> Response:
    icon = (PAGES_DIRECTORY / "favicon.svg").read_bytes()
    return Response(200, icon, "image/svg+xml", headers={"Cache-Control": "max-age=86400"})


@routes.get("/i18n", open=True)  # open: the sign-in page is translated too
def page_words(request: Request) -> dict[str, object]:
    """Our pages' words in the language a page asks for: ``user`` (the user's setting,
    for signed-in pages), else the first of ``browser`` (``navigator.languages``, comma
    separated) that we have, else English; with the languages a menu may offer."""
    language = best_language(request.query.get("browser", ""), request.query.get("user"))
    words: dict[str, str] = {}
    for folder in [PAGES_CATALOGUE, *request.services.registry.catalogues]:
        messages = catalogue(folder).messages
        # English under the rest: a key a translation lacks still reads as something
        words.update({**messages[REFERENCE], **messages.get(language, {})})
    return {"language": language, "languages": dict(language_names()), "messages": words}


def register(registry: Registry) -> None:
    """Core: the sign-in page and the words of our pages."""
    registry.routes(routes)
