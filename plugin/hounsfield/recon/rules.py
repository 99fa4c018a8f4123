"""Which series are projections to reconstruct: the ``HounsfieldRecon`` configuration section.

    "HounsfieldRecon": {"Automatic": true, "Modalities": ["XA", "RF", "DX", "CR"],
                        "MinimumFrames": 2}

(or ``ORTHANC__HOUNSFIELD_RECON__MODALITIES='["XA"]'`` ...). A series is a candidate when
its modality is listed, it has at least MinimumFrames frames and carries rotational
geometry (DistanceSourceToDetector and PositionerPrimaryAngleIncrement). Ordinary
rotational angiography matches too: whether a candidate can be reconstructed is judged
afterwards, and never decides whether it is stored.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

SECTION = "HounsfieldRecon"


class DetectionRules(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)

    automatic: bool = True
    modalities: frozenset[str] = frozenset({"XA", "RF", "DX", "CR"})
    minimum_frames: int = Field(2, ge=2, le=100_000)
    max_projections: int = Field(10_000, ge=3, le=100_000)  # in one TIFF upload

    def matches(self, tags: Mapping[str, Any]) -> bool:
        """On Orthanc's tags of one instance. Orthanc's JSON gives long values (one angle
        per frame) as null: the presence of the attribute is what counts."""
        try:
            frames = int(tags.get("NumberOfFrames") or 1)
        except ValueError:
            return False
        return (
            tags.get("Modality") in self.modalities
            and frames >= self.minimum_frames
            and bool(tags.get("DistanceSourceToDetector"))
            and "PositionerPrimaryAngleIncrement" in tags
        )
