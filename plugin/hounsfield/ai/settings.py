"""What runs on which series: the ``HounsfieldAI`` configuration section.

    "HounsfieldAI": {
      "Automatic": true,
      "Rules": [
        {"Analyzers": ["lung"], "Modalities": ["CT"], "BodyParts": ["CHEST", "LUNG"]},
        {"Analyzers": ["intracranial"], "Modalities": ["CT"], "Descriptions": ["*head*"]}
      ],
      "Models": "/var/lib/hounsfield/models",
      "Remote": {"BaseUrl": "http://localhost:11434", "Model": "llava"}
    }

A rule holds when every condition it gives holds: the series' modality is listed, its
BodyPartExamined is listed (case ignored), its SeriesDescription matches one of the
``*`` patterns (case ignored). A series gets the analyzers of every rule it meets, on the
stable study (when ``Automatic``) and on ``POST /api/studies/{id}/analyze``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_pascal

from hounsfield.ai.remote import RemoteSettings

SECTION = "HounsfieldAI"
CHEST = ("CHEST", "THORAX", "LUNG")
HEAD = ("HEAD", "BRAIN", "SKULL")


class _Model(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_pascal, extra="forbid", frozen=True, populate_by_name=True
    )


class Rule(_Model):
    analyzers: tuple[str, ...] = Field(min_length=1)
    modalities: frozenset[str] = frozenset()  # empty: any
    body_parts: frozenset[str] = frozenset()
    descriptions: tuple[str, ...] = ()  # ``*`` patterns on SeriesDescription

    def holds(self, tags: Mapping[str, str]) -> bool:
        body_part = tags.get("BodyPartExamined", "").upper()
        description = tags.get("SeriesDescription", "").casefold()
        return (
            (not self.modalities or tags.get("Modality", "") in self.modalities)
            and (not self.body_parts or body_part in {b.upper() for b in self.body_parts})
            and (
                not self.descriptions
                or any(fnmatch.fnmatchcase(description, p.casefold()) for p in self.descriptions)
            )
        )


DEFAULT_RULES = (
    Rule(analyzers=("lung",), modalities=frozenset({"CT"}), body_parts=frozenset(CHEST)),
    Rule(
        analyzers=("lung",),
        modalities=frozenset({"CT"}),
        descriptions=("*chest*", "*thorax*", "*lung*"),
    ),
    Rule(analyzers=("intracranial",), modalities=frozenset({"CT"}), body_parts=frozenset(HEAD)),
    Rule(
        analyzers=("intracranial",),
        modalities=frozenset({"CT"}),
        descriptions=("*head*", "*brain*", "*skull*"),
    ),
    Rule(analyzers=("metal", "quality"), modalities=frozenset({"CT"})),
)


class AiSettings(_Model):
    automatic: bool = True
    rules: tuple[Rule, ...] = DEFAULT_RULES
    # On a stable study, series with fewer images are left alone (localizers, key images:
    # not volumes); ``POST /api/studies/{id}/analyze`` tries whatever it is asked to.
    minimum_slices: int = Field(10, ge=2, le=100_000)
    metal_threshold_hu: float = Field(2500.0, ge=300, le=30000)
    # A folder of installed ONNX models (one sub-folder each); "" for none.
    models: str = ""
    remote: RemoteSettings | None = None
    # The largest series analysed, in voxels (4 bytes each in memory, as float32): 512 x
    # 512 x 1000 slices fit; a 2048 x 2048 x 500 micro-CT does not.
    max_voxels: int = Field(300_000_000, ge=1000)

    def analyzers_for(self, tags: Mapping[str, str]) -> list[str]:
        """The analyzers the rules choose for a series, each once, in rule order."""
        chosen: dict[str, None] = {}
        for rule in self.rules:
            if rule.holds(tags):
                chosen.update(dict.fromkeys(rule.analyzers))
        return list(chosen)
