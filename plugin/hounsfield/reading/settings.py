"""The reading department's settings: the ``HounsfieldReading`` configuration section.

    "HounsfieldReading": {"ClaimMinutes": 30, "ReportBytes": 65536,
                          "Institution": "Radiology, Saint Elsewhere", "Logo": "/etc/logo.png",
                          "Templates": "/etc/hounsfield/templates"}

A claim left without activity for ClaimMinutes is released; ReportBytes bounds one report's
text; Institution and Logo head every PDF; Templates is a folder of extra report templates
(jinja2 files, see ``templates``) beside the shipped ones.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

SECTION = "HounsfieldReading"


class ReadingSettings(BaseModel):
    model_config = ConfigDict(alias_generator=to_pascal, extra="forbid", frozen=True)

    claim_minutes: float = Field(30.0, gt=0, le=24 * 60)
    report_bytes: int = Field(64 * 1024, ge=1024, le=4 * 1024 * 1024)
    institution: str = Field("", max_length=200)
    logo: str = ""  # a PNG or JPEG file
    templates: str = ""  # a folder of extra templates
    reconcile_batch: int = Field(200, ge=1, le=10_000)
