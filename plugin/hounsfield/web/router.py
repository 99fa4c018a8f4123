"""Route tables with path parameters and permissions, and dispatch that always ends in a
JSON response.

Each feature declares its routes in a ``RouteTable``, each route with who may call it
(``roles=``, or ``open=True``), how it is audited and which study it names: the gate's rule
for the route is made from the same declaration, so a route cannot exist without one. The
``Router`` joins the tables and turns every outcome into a ``Response``: a handler's value,
an ``HttpError``, an unknown route (404), a wrong method (405) or an unexpected exception
(500, logged with its traceback, never shown to the client).
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypedDict

from typing_extensions import Unpack

from hounsfield.auth.permissions import Access, PermissionMissing, Rule, Study
from hounsfield.auth.roles import Role
from hounsfield.web.http import HttpError, Request, Response

log = logging.getLogger(__name__)

Handler = Callable[[Request], Any]

_CONVERTERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": (r"[^/]+", str),
    "int": (r"[0-9]{1,18}", int),
    "path": (r".+", str),  # the rest of the path, slashes included
}
_PARAM = re.compile(r"\{(\w+)(?::(\w+))?\}")
_ORTHANC_GROUPS = {"str": "[^/]+", "int": "[0-9]+", "path": ".+"}


class AccessKeywords(TypedDict, total=False):
    """What ``RouteTable.route`` takes beside the method and template."""

    roles: Iterable[Role]
    open: bool
    audit: str
    study: Study | None
    referrer_query: Iterable[str] | None
    page: bool


@dataclass(frozen=True)
class Route:
    method: str
    template: str
    pattern: re.Pattern[str]
    converters: dict[str, Callable[[str], Any]]
    handler: Handler
    access: Access
    page: bool = False  # a browser page: a visitor without a session is sent to sign in

    def rule(self) -> Rule:
        return Rule(frozenset({self.method}), self.template, self.pattern, self.access)


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

    def route(
        self,
        method: str,
        template: str,
        *,
        roles: Iterable[Role] = (),
        open: bool = False,
        audit: str = "",
        study: Study | None = None,
        referrer_query: Iterable[str] | None = None,
        page: bool = False,
    ) -> Callable[[Handler], Handler]:
        """Declare a route and who may call it: ``roles`` (or ``open`` for everyone, signed
        in or not); ``audit``, the action each call is audited as (an access to patient
        data); ``study``, the parameter naming the study it touches (a referrer then passes
        only for a linked study; ``referrer_query``, the query keys a referrer may send)."""
        try:
            access = Access(
                frozenset(roles),
                open=open,
                audit=audit,
                study=study,
                referrer_query=None if referrer_query is None else frozenset(referrer_query),
            )
        except PermissionMissing as missing:
            raise PermissionMissing(f"route {method} {template}: {missing}") from None

        def decorate(handler: Handler) -> Handler:
            pattern, converters = compile_template(template)
            self.routes.append(
                Route(method.upper(), template, pattern, converters, handler, access, page)
            )
            return handler

        return decorate

    def get(self, template: str, **access: Unpack[AccessKeywords]) -> Callable[[Handler], Handler]:
        return self.route("GET", template, **access)

    def post(self, template: str, **access: Unpack[AccessKeywords]) -> Callable[[Handler], Handler]:
        return self.route("POST", template, **access)


class Router:
    def __init__(self, tables: Iterable[RouteTable]) -> None:
        self.routes = [route for table in tables for route in table.routes]

    def rules(self) -> list[Rule]:
        """The gate's rule for each route, in the order routes are matched."""
        return [route.rule() for route in self.routes]

    def uri_patterns(self, covered: str) -> list[str]:
        """Each route's URI as a regular expression in Orthanc's syntax (a path parameter
        one group), once each, leaving out those under ``covered`` (a prefix registered
        whole): what the adapter asks Orthanc to hand over to us."""
        patterns: list[str] = []
        for route in self.routes:
            if route.template.startswith(covered):
                continue
            pattern = _PARAM.sub(
                lambda m: f"({_ORTHANC_GROUPS[m.group(2) or 'str']})", route.template
            )
            if pattern not in patterns:
                patterns.append(pattern)
        return patterns

    def is_page(self, path: str) -> bool:
        """Whether ``path`` is one of our browser pages (whatever the method)."""
        return any(route.page and route.pattern.match(path) for route in self.routes)

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
