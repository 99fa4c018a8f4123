"""Route tables with path parameters, and dispatch that always ends in a JSON response.

Each feature declares its routes in a ``RouteTable``; the ``Router`` joins them and
turns every outcome into a ``Response``: a handler's value, an ``HttpError``, an
unknown route (404), a wrong method (405) or an unexpected exception (500, logged
with its traceback, never shown to the client).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from hounsfield.web.http import HttpError, Request, Response

log = logging.getLogger(__name__)

Handler = Callable[[Request], Any]

_CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"[0-9]{1,18}", int),
    "path": (r".+", str),  # the rest of the path, slashes included
}
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    converters: dict[str, Callable[[str], Any]]
    handler: Handler


def compile_template(template: str) -> tuple[re.Pattern[str], dict[str, Callable[[str], Any]]]:
    converters: dict[str, Callable[[str], Any]] = {}
    regex, position = "", 0
    for match in _PARAM.finditer(template):
        name, kind = match.group(1), match.group(2) or "str"
        if kind not in _CONVERTERS:
            raise ValueError(f"unknown path parameter type {kind!r} in {template!r}")
        piece, converters[name] = _CONVERTERS[kind]
        regex += re.escape(template[position : match.start()]) + f"(?P<{name}>{piece})"
        position = match.end()
    regex += re.escape(template[position:])
    return re.compile(f"^{regex}$"), converters


class RouteTable:
    """The routes of one feature, declared with decorators."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def route(self, method: str, template: str) -> Callable[[Handler], Handler]:
        def decorate(handler: Handler) -> Handler:
            pattern, converters = compile_template(template)
            self.routes.append(Route(method.upper(), template, pattern, converters, handler))
            return handler

        return decorate

    def get(self, template: str) -> Callable[[Handler], Handler]:
        return self.route("GET", template)

    def post(self, template: str) -> Callable[[Handler], Handler]:
        return self.route("POST", template)


class Router:
    def __init__(self, tables: Iterable[RouteTable]) -> None:
        self.routes = [route for table in tables for route in table.routes]

    def handle(self, request: Request) -> Response:
        try:
            return self._dispatch(request)
        except HttpError as error:
            return Response.error(error)
        except Exception:
            incident = uuid.uuid4().hex[:12]
            log.exception("%s %s failed (incident %s)", request.method, request.path, incident)
            return Response.error(HttpError(500, "internal error", incident=incident))

    def _dispatch(self, request: Request) -> Response:
        allowed: list[str] = []
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            if route.method != request.method:
                allowed.append(route.method)
                continue
            request.path_params = {
                name: route.converters[name](value) for name, value in match.groupdict().items()
            }
            result = route.handler(request)
            return result if isinstance(result, Response) else Response.json(result)
        if allowed:
            response = Response.error(
                HttpError(405, f"method {request.method} is not allowed on {request.path}")
            )
            response.allowed_methods = tuple(sorted(set(allowed)))
            return response
        raise HttpError(404, f"no such route: {request.method} {request.path}")
