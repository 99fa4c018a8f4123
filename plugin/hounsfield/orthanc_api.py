"""The part of Orthanc that domain code may use, as an interface it can be tested against."""

from __future__ import annotations

from typing import Any, Protocol


class OrthancApi(Protocol):
    def get_json(self, path: str) -> Any:
        """GET one of Orthanc's REST resources (e.g. ``/studies/{id}``) as parsed JSON."""
        ...

    def store(self, dicom: bytes) -> dict[str, Any]:
        """Store one DICOM file (POST /instances); Orthanc's answer (ID, ParentSeries...)."""
        ...

    def find_instance(self, sop_instance_uid: str) -> str | None:
        """Orthanc's id of the instance with this SOPInstanceUID, or None."""
        ...
