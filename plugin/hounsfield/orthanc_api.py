"""The part of Orthanc that domain code may use, as an interface it can be tested against."""

from __future__ import annotations

from typing import Any, Protocol


class OrthancError(Exception):
    """Orthanc refused a request made through the API: its message, and the HTTP status
    Orthanc would have answered (400 for a bad request, 404 for an unknown resource)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class OrthancApi(Protocol):
    def get_json(self, path: str) -> Any:
        """GET one of Orthanc's REST resources (e.g. ``/studies/{id}``) as parsed JSON."""
        ...

    def get_bytes(self, path: str) -> bytes:
        """GET one of Orthanc's REST resources as it answers it (a file, a raw value)."""
        ...

    def post_json(self, path: str, body: Any) -> Any:
        """POST a JSON body to one of Orthanc's REST routes (e.g. ``/tools/find``)."""
        ...

    def delete(self, path: str) -> None:
        """DELETE one of Orthanc's resources (e.g. ``/instances/{id}``)."""
        ...

    def find_study(self, study_instance_uid: str) -> str | None:
        """Orthanc's id of the study with this StudyInstanceUID, or None."""
        ...

    def store(self, dicom: bytes) -> dict[str, Any]:
        """Store one DICOM file with Orthanc's own POST /instances; its answer (ID,
        ParentSeries, Status...), or OrthancError naming why Orthanc did not store it."""
        ...

    def find_instance(self, sop_instance_uid: str) -> str | None:
        """Orthanc's id of the instance with this SOPInstanceUID, or None."""
        ...


class InProcessOrthanc(OrthancApi, Protocol):
    """What only the plugin process has: Orthanc's transcoder, through the SDK."""

    def dicom_file(self, instance: str, transfer_syntax: str | None = None) -> bytes:
        """An instance's DICOM file, transcoded to ``transfer_syntax`` when it is another;
        OrthancError when Orthanc cannot transcode it."""
        ...

    def get_from_plugins(self, path: str) -> bytes:
        """GET a route another plugin serves (DICOMweb's), as that plugin answers it;
        ``get_bytes`` reaches only Orthanc's built-in routes."""
        ...


def get_if_found(orthanc: OrthancApi, path: str) -> Any:
    """GET ``path`` as JSON; None when Orthanc has no such resource (a study deleted between
    an event or a job's start and now, say). Other refusals are raised."""
    try:
        return orthanc.get_json(path)
    except OrthancError as error:
        if error.status == 404:
            return None
        raise
