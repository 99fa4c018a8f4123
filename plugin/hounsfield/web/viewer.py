"""OHIF, served by Orthanc itself at ``/ohif/``.

The files are OHIF's published build, unpacked and rebased by ``ohif/install.py``
(``make run`` and ``make test`` do it). OHIF is a single-page app: any path that is not
one of its files (``/ohif/viewer?StudyInstanceUIDs=...``, a reload) gets ``index.html``.
Hashed bundles are cached for good; the page and its configuration never are.
"""

from __future__ import annotations

import mimetypes
import re
from pathlib import Path
from typing import TYPE_CHECKING

from hounsfield.auth.roles import PEOPLE
from hounsfield.web.http import HttpError, Request, Response
from hounsfield.web.router import RouteTable

if TYPE_CHECKING:
    from hounsfield.registry import Registry

VIEWER_DIRECTORY = Path(__file__).resolve().parents[3] / "ohif" / "dist"
PREFIX = "/ohif"
# OHIF's bundles and codecs carry a content hash in their names.
HASHED = re.compile(r"\.[0-9a-f]{16}\.(js|css|wasm)$|^[0-9a-f]{16}\.wasm$")
TYPES = {".wasm": "application/wasm", ".js": "text/javascript", ".mjs": "text/javascript"}

routes = RouteTable()


def _file(relative: str) -> Path | None:
    if not VIEWER_DIRECTORY.is_dir():
        raise HttpError(503, "the viewer is not installed: run `make run` (it installs OHIF)")
    candidate = (VIEWER_DIRECTORY / relative).resolve()
    if VIEWER_DIRECTORY not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def _answer(path: Path) -> Response:
    content_type = TYPES.get(path.suffix) or mimetypes.guess_type(path.name)[0]
    cache = "public, max-age=31536000, immutable" if HASHED.search(path.name) else "no-cache"
    return Response(
        200,
        path.read_bytes(),
        content_type or "application/octet-stream",
        headers={"Cache-Control": cache},
    )


@routes.get(PREFIX, roles=PEOPLE, page=True)
@routes.get(PREFIX + "/{relative:path}", roles=PEOPLE, page=True)
def viewer(request: Request) -> Response:
    relative = request.path_params.get("relative", "")
    found = _file(relative) if relative else None
    if found is not None:
        return _answer(found)
    if Path(relative).suffix:
        raise HttpError(404, f"no such file: {relative}")  # an asset, not one of the app's pages
    return _answer(VIEWER_DIRECTORY / "index.html")


def register(registry: Registry) -> None:
    """Core: the viewer (OHIF) at /ohif."""
    registry.routes(routes)
