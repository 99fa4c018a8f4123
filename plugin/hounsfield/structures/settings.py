"""The ``HounsfieldStructures`` configuration section.

    "HounsfieldStructures": {"Automatic": true, "MaxVoxels": 150000000}

``Automatic``: read every RTSTRUCT series of a study once it is stable (else only when
someone asks for it). ``MaxVoxels``: the largest referenced image series loaded for HU
statistics (float32: 150 million voxels is 600 MB in the worker).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

SECTION = "HounsfieldStructures"


class StructuresSettings(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, extra="forbid", frozen=True, populate_by_name=True
    )

    automatic: bool = True
    max_voxels: int = Field(150_000_000, ge=1, le=2_000_000_000)
