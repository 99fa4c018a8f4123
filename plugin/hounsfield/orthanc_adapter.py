"""The one module that touches the ``orthanc`` module: callbacks in, SDK calls out.

Everything here stays thin: translate Orthanc's callback arguments into our types,
hand them to the ``Application``, and translate the answer back.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import threading
from typing import Any
from urllib.parse import unquote

import orthanc

from hounsfield import dicomweb
from hounsfield.app import Application
from hounsfield.config import load_settings
from hounsfield.events.types import Event
from hounsfield.orthanc_api import OrthancError
from hounsfield.untrusted import InputRefused
from hounsfield.web import Request, Response
from hounsfield.web.pages import PAGES_DIRECTORY

# Two of our threads storing at once through ``RestApiPost("/instances")`` deadlocked
# Orthanc 1.10.1 with the Python plugin 4.0 (bench/ai.py, four parallel REST uploads of
# 300 slices; py-spy: one thread inside Orthanc's store waiting for the GIL in our
# received-instance callback, the other holding the GIL in ``RestApiPost``, waiting for
# the store's lock). Waiting for a Python lock releases the GIL, so our stores queue here
# instead; Orthanc's own roads (C-STORE, its REST) do not pass through this lock.
_STORES = threading.Lock()

log = logging.getLogger(__name__)
API_PREFIX = "/api/"

HTTP_METHODS = {1: "GET", 2: "POST", 3: "PUT", 4: "DELETE"}  # OrthancPluginHttpMethod
DIMSE_CANNOT_UNDERSTAND = 0xC000  # C-STORE failure status (PS3.4 B.2.3)

CHANGE_EVENTS = {
    orthanc.ChangeType.NEW_STUDY: Event.STUDY_NEW,
    orthanc.ChangeType.STABLE_STUDY: Event.STUDY_STABLE,
    orthanc.ChangeType.NEW_SERIES: Event.SERIES_NEW,
    orthanc.ChangeType.STABLE_SERIES: Event.SERIES_STABLE,
    orthanc.ChangeType.NEW_INSTANCE: Event.INSTANCE_NEW,
}
# Orthanc signals a deletion for every resource it removes, patient down to instance.
DELETED_EVENTS = {orthanc.ResourceType.STUDY: Event.STUDY_DELETED}


ORIGINS = {
    orthanc.InstanceOrigin.REST_API: "REST API",
    orthanc.InstanceOrigin.PLUGIN: "plugin",
    orthanc.InstanceOrigin.LUA: "Lua",
    orthanc.InstanceOrigin.WEB_DAV: "WebDAV",
}


class OrthancLogHandler(logging.Handler):
    """Routes Python logging into Orthanc's log, at the matching level."""

    def emit(self, record: logging.LogRecord) -> None:
        # The SDK takes a C string: a NUL (in a logged HL7 control id, say) made it raise
        # TypeError, and the message being answered got "internal error" instead of its NAK.
        message = self.format(record).replace("\0", "\\x00")
        if record.levelno >= logging.ERROR:
            orthanc.LogError(message)
        elif record.levelno >= logging.WARNING:
            orthanc.LogWarning(message)
        else:
            orthanc.LogInfo(message)


class PluginOrthancApi:
    """``InProcessOrthanc`` through the SDK's in-process REST calls (no HTTP, no auth)."""

    def get_json(self, path: str) -> Any:
        try:
            return json.loads(orthanc.RestApiGet(path))
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    def get_bytes(self, path: str) -> bytes:
        try:
            return orthanc.RestApiGet(path)
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    def post_json(self, path: str, body: Any) -> Any:
        try:
            return json.loads(orthanc.RestApiPost(path, json.dumps(body)))
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    def delete(self, path: str) -> None:
        try:
            orthanc.RestApiDelete(path)
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    def find_study(self, study_instance_uid: str) -> str | None:
        try:
            return orthanc.LookupStudy(study_instance_uid) or None
        except orthanc.OrthancException:  # the SDK raises for an unknown UID
            return None

    def dicom_file(self, instance: str, transfer_syntax: str | None = None) -> bytes:
        try:
            dicom = orthanc.GetDicomForInstance(instance)
            if transfer_syntax is None or self._stored_syntax(instance) == transfer_syntax:
                return dicom
            transcoded = orthanc.TranscodeDicomInstance(dicom, transfer_syntax)
            return transcoded.SerializeDicomInstance()
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    def get_from_plugins(self, path: str) -> bytes:
        try:
            return orthanc.RestApiGetAfterPlugins(path)
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    @staticmethod
    def _stored_syntax(instance: str) -> str | None:
        try:  # recorded by Orthanc >= 1.9 for what it stores
            return orthanc.RestApiGet(f"/instances/{instance}/metadata/TransferSyntax").decode()
        except orthanc.OrthancException:
            return None

    def store(self, dicom: bytes) -> dict[str, Any]:
        """One store at a time from our threads (see ``_STORES``)."""
        try:  # RestApiPost reaches Orthanc's built-in route, never our own /instances
            with _STORES:
                return json.loads(orthanc.RestApiPost("/instances", dicom))
        except orthanc.OrthancException as error:
            raise _orthanc_error(error) from error

    def find_instance(self, sop_instance_uid: str) -> str | None:
        try:
            return orthanc.LookupInstance(sop_instance_uid) or None
        except Exception:  # the SDK raises for an unknown UID
            return None


def _decoded(query: dict[str, str]) -> dict[str, str]:
    """Query arguments percent-decoded: Orthanc 1.10 hands them over as sent (it stopped
    decoding in 1.10, assuming its HTTP server did), so ``PatientName=%2A`` arrives as
    "%2A" where a client meant "*". The gate judges the arguments as sent; a value it
    let through has no "%" left to decode, so decoding cannot widen what it allowed."""
    return {unquote(name): unquote(value) for name, value in query.items()}


def _orthanc_error(error: Exception) -> OrthancError:
    """An SDK exception, whose arguments are (Orthanc's error code, its message)."""
    code, message = (*error.args, None, None)[:2]
    unknown = code in (orthanc.ErrorCode.UNKNOWN_RESOURCE, orthanc.ErrorCode.INEXISTENT_ITEM)
    text = message if isinstance(message, str) and message else "Orthanc refused it"
    return OrthancError(text, 404 if unknown else 400)


def set_metric(name: str, value: float) -> None:
    orthanc.SetMetricsValue(name, float(value), orthanc.MetricsType.DEFAULT)


def send(output: Any, response: Response) -> None:
    for name, value in response.headers.items():
        output.SetHttpHeader(name, value)
    for cookie in response.cookies:
        output.SetHttpHeader("Set-Cookie", cookie)
    if response.parts is not None:
        output.StartMultipartAnswer("related", response.content_type)
        try:
            for part in response.parts:
                output.SendMultipartItem(part)
        except Exception:  # the status is sent: the client sees the answer end early
            log.exception("a multipart answer ended early")
    elif response.status == 200:
        output.AnswerBuffer(response.body, response.content_type)
    elif response.status == 405:  # Orthanc insists on its dedicated call for 405
        output.SendMethodNotAllowed(",".join(response.allowed_methods))
    else:
        output.SetHttpHeader("Content-Type", response.content_type)
        _send_http_status(output, response.status, response.body)


def _send_http_status(output: Any, status: int, body: bytes) -> None:
    try:
        output.SendHttpStatus(status, body)  # Python plugin >= 4.1: (status, bytes)
    except TypeError:
        # Python plugin 4.0 (Debian bookworm): (status, str, length); our bodies are ASCII
        output.SendHttpStatus(status, body.decode("ascii"), len(body))


def install(worker_python: str) -> Application:
    """Build the application from Orthanc's configuration and register every callback."""
    package_log = logging.getLogger("hounsfield")
    package_log.addHandler(OrthancLogHandler())
    package_log.setLevel(logging.INFO)
    package_log.propagate = False

    settings = load_settings(json.loads(orthanc.GetConfiguration()), os.environ)
    app = Application(settings, PluginOrthancApi(), set_metric, worker_python=worker_python)

    def on_rest(output: Any, uri: str, **request: Any) -> None:
        try:
            response = app.handle_http(
                Request(
                    method=request["method"],
                    path=uri,
                    query=_decoded(request.get("get") or {}),
                    headers=request.get("headers") or {},
                    body=request.get("body") or b"",
                )
            )
        except Exception:
            log.exception("request %s %s could not be handled", request.get("method"), uri)
            response = Response.json({"error": "internal error", "status": 500}, status=500)
        send(output, response)

    def on_change(change_type: int, level: int, resource_id: str) -> None:
        if change_type == orthanc.ChangeType.ORTHANC_STARTED:
            app.start()
            return
        if change_type == orthanc.ChangeType.ORTHANC_STOPPED:
            app.stop()
            return
        if change_type == orthanc.ChangeType.DELETED:
            event = DELETED_EVENTS.get(level)
        else:
            event = CHANGE_EVENTS.get(change_type)
        if event is not None:
            try:
                app.on_change(event, resource_id)
            except Exception:
                log.exception("change %s of %s could not be recorded", change_type, resource_id)

    def on_http_request(uri: str, **request: Any) -> bool:
        try:
            return app.filter_request(
                HTTP_METHODS.get(request.get("method"), "UNKNOWN"),
                uri,
                request.get("headers") or {},
                request.get("get") or {},
                request.get("ip") or "",
            )
        except Exception:
            log.exception("the gate failed on %s; refusing", uri)
            return False

    def on_cstore(received: Any) -> int:
        """A refused C-STORE answers the modality a failure status, so it knows."""
        try:
            refusal = app.admit(
                received.GetInstanceData(),
                road="C-STORE",
                sender=f"AE {received.GetInstanceRemoteAet()}",
            )
        except Exception:
            log.exception("checking an incoming C-STORE failed; accepting it")
            return 0
        return 0 if refusal is None else DIMSE_CANNOT_UNDERSTAND

    def on_received(dicom: bytes, origin: int) -> tuple[int, None]:
        """Orthanc's other roads (modify, anonymize, Lua...): a refused object is discarded
        and the road reports a failure. Our own roads judged their objects already: the
        REST upload and STOW-RS (which store through the SDK, origin "plugin") and C-STORE
        (judged by on_cstore, which can answer a status). Every object kept is counted."""
        refusal = None
        if origin not in (orthanc.InstanceOrigin.DICOM_PROTOCOL, orthanc.InstanceOrigin.PLUGIN):
            try:
                refusal = app.admit(dicom, road=ORIGINS.get(origin, "unknown road"))
            except Exception:
                log.exception("checking an incoming object failed; accepting it")
        if refusal is not None:
            return (orthanc.ReceivedInstanceAction.DISCARD, None)
        app.instance_received()
        return (orthanc.ReceivedInstanceAction.KEEP_AS_IS, None)

    def on_worklist(answers: Any, query: Any, caller: str, called: str) -> None:
        """A modality's worklist C-FIND; an exception answers it a failure status."""
        try:
            items = app.find_worklist(query.WorklistGetDicomQuery(), caller=caller, called=called)
        except InputRefused as refused:
            log.warning("worklist query of AE %s refused: %s", caller, refused.message)
            raise
        except Exception:
            log.exception("the worklist query of AE %s could not be answered", caller)
            raise
        for item in items:
            answers.WorklistAddAnswer(query, item)

    orthanc.RegisterIncomingCStoreInstanceFilter(on_cstore)
    if app.answers_worklists:
        orthanc.RegisterWorklistCallback(on_worklist)
    orthanc.RegisterReceivedInstanceCallback(on_received)
    orthanc.RegisterIncomingHttpRequestFilter(on_http_request)
    # /api/ is ours whole (an unknown route gets our JSON 404); every other route of every
    # feature is registered as declared, e.g. Orthanc's own POST /instances (uploads:
    # refusals answered as 4xx) and pages such as /login.
    orthanc.RegisterRestCallback(API_PREFIX + ".*", on_rest)
    # STOW-RS and its URIs' searches: the route-claims plugin, loaded next, hands them to us.
    os.environ[dicomweb.CLAIMS_VARIABLE] = "\n".join(dicomweb.CLAIMED_ROUTES)
    for pattern in app.router.uri_patterns(covered=API_PREFIX):
        orthanc.RegisterRestCallback(pattern, on_rest)
    orthanc.ExtendOrthancExplorer((PAGES_DIRECTORY / "explorer.js").read_text())
    orthanc.RegisterOnChangeCallback(on_change)
    atexit.register(app.stop)
    return app
