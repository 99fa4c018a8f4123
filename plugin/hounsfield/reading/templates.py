"""Report templates: jinja2 files, one per template and language, chosen by the study.

A template is ``<name>.<language>.j2`` (``ct-chest.fr.j2``) in the shipped folder or in
the one the ``Templates`` setting names (an admin's file of the same name wins). It says
what it fits with three variables and gives each report section as a block::

    {% set title = "CT chest" %}
    {% set modalities = ["CT"] %}             {# empty: any modality #}
    {% set keywords = ["CHEST", "THORAX"] %}  {# body part or words of the descriptions #}
    {% block technique %}CT of the chest. Parameters: {{ technique.parameters }}.{% endblock %}
    {% block findings %}Lungs: ...{% endblock %}

Blocks are rendered with the study's facts (``StudyFacts``: ``patient``, ``study``,
``technique``, ``derived``), so a report starts pre-filled. Templates run sandboxed
(jinja2's SandboxedEnvironment): a template file is configuration, not code.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jinja2 import FileSystemLoader, StrictUndefined, TemplateError, nodes
from jinja2.sandbox import SandboxedEnvironment

from hounsfield.api import OrthancApi
from hounsfield.i18n import LANGUAGES, REFERENCE
from hounsfield.reading.model import SECTIONS
from hounsfield.reading.worklist import fold, imaged_modalities

SHIPPED = Path(__file__).parent / "templates"
GENERIC = "generic"
_FILE = re.compile(r"^(?P<name>[a-z0-9][a-z0-9-]{0,63})\.(?P<language>[a-z]{2})\.j2$")


class UnknownTemplate(LookupError):
    pass


@dataclass(frozen=True)
class StudyFacts:
    """What templates may print, read from Orthanc's tags of the study."""

    patient: Mapping[str, str]
    study: Mapping[str, str]
    technique: Mapping[str, Any]
    derived: tuple[str, ...] = ()  # DerivationDescription of derived series (e.g. a reconstruction)
    modalities: tuple[str, ...] = ()
    words: frozenset[str] = field(default_factory=frozenset)  # body part, description words

    @classmethod
    def read(cls, orthanc: OrthancApi, study_id: str) -> StudyFacts:
        study = orthanc.get_json(f"/studies/{study_id}")
        series = orthanc.get_json(f"/studies/{study_id}/series")
        tags, patient = study.get("MainDicomTags", {}), study.get("PatientMainDicomTags", {})
        modalities = imaged_modalities(series)
        derived, sample, words = [], None, set(_words(tags.get("StudyDescription", "")))
        for entry in sorted(series, key=lambda s: -len(s.get("Instances", ()))):
            words |= set(_words(entry["MainDicomTags"].get("SeriesDescription", "")))
            if not entry.get("Instances"):
                continue
            instance = orthanc.get_json(f"/instances/{entry['Instances'][0]}/simplified-tags")
            if "DERIVED" in str(instance.get("ImageType", "")) and instance.get(
                "DerivationDescription"
            ):
                derived.append(str(instance["DerivationDescription"]))
            elif sample is None:
                sample = instance
        sample = sample or {}
        words |= set(_words(str(sample.get("BodyPartExamined", ""))))
        return cls(
            patient={
                "name": patient.get("PatientName", "").replace("^", " ").strip(),
                "id": patient.get("PatientID", ""),
                "birth_date": patient.get("PatientBirthDate", ""),
                "sex": patient.get("PatientSex", ""),
            },
            study={
                "date": tags.get("StudyDate", ""),
                "description": tags.get("StudyDescription", ""),
                "accession": tags.get("AccessionNumber", ""),
            },
            technique=_technique(sample, modalities),
            derived=tuple(derived),
            modalities=modalities,
            words=frozenset(words),
        )


def _words(text: str) -> list[str]:
    return [word.upper() for word in re.split(r"[^0-9A-Za-z]+", fold(text)) if word]


def _number(value: object) -> str:
    try:
        return f"{float(str(value).split(chr(92))[0]):g}"
    except ValueError:
        return ""


def _technique(tags: Mapping[str, Any], modalities: Iterable[str]) -> dict[str, Any]:
    """kV, mAs, slice thickness and contrast from one image of the main series."""
    kv, mas = _number(tags.get("KVP", "")), _number(tags.get("Exposure", ""))
    thickness = _number(tags.get("SliceThickness", ""))
    parts = [
        f"{kv} kV" if kv else "",
        f"{mas} mAs" if mas else "",
        f"{thickness} mm" if thickness else "",
    ]
    return {
        "modalities": ", ".join(modalities),
        "kv": kv,
        "mas": mas,
        "slice_thickness": thickness,
        "contrast": str(tags.get("ContrastBolusAgent", "")).strip(),
        "body_part": str(tags.get("BodyPartExamined", "")).strip(),
        "parameters": ", ".join(part for part in parts if part),
    }


@dataclass(frozen=True)
class TemplateInfo:
    name: str
    title: str
    languages: tuple[str, ...]
    modalities: frozenset[str]
    keywords: frozenset[str]

    def score(self, facts: StudyFacts) -> int:
        """How well the template fits: -1 not at all, more is better."""
        if self.modalities and not self.modalities & set(facts.modalities):
            return -1
        if self.keywords and not self.keywords & facts.words:
            return -1
        return 2 * bool(self.modalities) + len(self.keywords & facts.words)


class Templates:
    """The shipped templates and an admin's folder (whose files win by name)."""

    def __init__(self, extra: Path | None = None) -> None:
        folders = [str(extra)] if extra else []
        self.env = SandboxedEnvironment(
            loader=FileSystemLoader([*folders, str(SHIPPED)]),
            undefined=StrictUndefined,
            autoescape=False,  # plain text: escaping is the page's and the PDF's business
            keep_trailing_newline=False,
        )
        files: dict[str, set[str]] = {}
        for folder in [SHIPPED, *([extra] if extra else [])]:
            for path in folder.glob("*.j2"):
                match = _FILE.match(path.name)
                if match and match["language"] in LANGUAGES:
                    files.setdefault(match["name"], set()).add(match["language"])
        self.available = {
            name: self._info(name, languages)
            for name, languages in sorted(files.items())
            if REFERENCE in languages
        }

    def _info(self, name: str, languages: set[str]) -> TemplateInfo:
        settings = self._settings(f"{name}.{REFERENCE}.j2")
        return TemplateInfo(
            name=name,
            title=str(settings.get("title", name)),
            languages=tuple(language for language in LANGUAGES if language in languages),
            modalities=frozenset(settings.get("modalities", ())),
            keywords=frozenset(str(word).upper() for word in settings.get("keywords", ())),
        )

    def _settings(self, file: str) -> dict[str, Any]:
        """The template's top-level ``{% set name = constant %}`` lines, read without
        rendering it (its blocks need a study)."""
        source, _, _ = self.env.loader.get_source(self.env, file)  # type: ignore[union-attr]
        settings = {}
        for node in self.env.parse(source).find_all(nodes.Assign):
            if isinstance(node.target, nodes.Name):
                try:
                    settings[node.target.name] = node.node.as_const()
                except nodes.Impossible:
                    continue
        return settings

    def choose(self, facts: StudyFacts) -> str:
        """The best fitting template's name (the generic one when nothing fits better)."""
        scored = [(info.score(facts), name) for name, info in self.available.items()]
        best = max((score, name) for score, name in scored if score >= 0)
        return best[1] if best[0] > 0 else GENERIC

    def title(self, name: str, language: str) -> str:
        return str(self._settings(self._file(name, language)).get("title", name))

    def render(self, name: str, language: str, facts: StudyFacts) -> dict[str, str]:
        """Each section of the template, filled with the study's facts."""
        template = self.env.get_template(self._file(name, language))
        values = {
            "patient": facts.patient,
            "study": facts.study,
            "technique": facts.technique,
            "derived": facts.derived,
        }
        context = template.new_context(values)
        sections = {}
        for section in SECTIONS:
            block = template.blocks.get(section)
            if block is None:
                continue
            try:
                sections[section] = "".join(block(context)).strip()
            except TemplateError as error:  # an admin's template that does not fit the study
                raise UnknownTemplate(f"template {name!r} failed: {error}") from error
        return sections

    def _file(self, name: str, language: str) -> str:
        info = self.available.get(name)
        if info is None:
            raise UnknownTemplate(f"no template {name!r}; known: {', '.join(self.available)}")
        return f"{name}.{language if language in info.languages else REFERENCE}.j2"


def shelf(extra: Path | None = None) -> Templates:
    """The templates, read again only when a file of the admin's folder was added, removed or
    changed: reading and parsing them all took 10 ms, on every save of a draft; looking at
    the folder's files is a stat each."""
    signature = (
        tuple(sorted((path.name, path.stat().st_mtime_ns) for path in extra.glob("*.j2")))
        if extra
        else ()
    )
    return _shelf(extra, signature)


@functools.lru_cache(maxsize=4)
def _shelf(extra: Path | None, signature: tuple[tuple[str, int], ...]) -> Templates:
    return Templates(extra)
