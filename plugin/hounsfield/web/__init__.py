"""A small HTTP layer for our routes under /api/: JSON in and out, errors as JSON."""

from hounsfield.web.http import HttpError, Request, Response
from hounsfield.web.router import Router, RouteTable

__all__ = ["HttpError", "Request", "Response", "RouteTable", "Router"]
