"""What the registry accepts at start, and what it refuses with a clear error."""

from __future__ import annotations

import pytest

from hounsfield.app import build_registry
from hounsfield.auth.roles import Role
from hounsfield.events.types import Intervention
from hounsfield.registry import ExtensionError, Registry


def refuse_everything(services, dicom, sender, road):  # an answerer's shape
    return "refused"


def test_an_intervention_has_exactly_one_answerer() -> None:
    registry = build_registry([], {})
    answerer = registry.answerer(Intervention.INSTANCE_ADMIT)
    assert answerer.__module__ == "hounsfield.intake.routes"  # the core's corruption check
    with pytest.raises(ExtensionError, match=r"hounsfield\.intake\.routes\.admit_instance"):
        registry.intervene(Intervention.INSTANCE_ADMIT, refuse_everything)
    assert registry.answerer(Intervention.INSTANCE_ADMIT) is answerer


def test_an_intervention_nobody_answers_stops_the_start() -> None:
    with pytest.raises(ExtensionError, match=r"nothing answers instance\.admit"):
        Registry().answerer(Intervention.INSTANCE_ADMIT)


def test_one_landing_page_per_role() -> None:
    registry = build_registry(["hounsfield.reading"], {})
    assert registry.landings == {Role.RADIOLOGIST: "/reading", Role.TECHNICIAN: "/reading"}
    with pytest.raises(ExtensionError, match="radiologists already land on /reading"):
        registry.landing("/elsewhere", {Role.RADIOLOGIST})
    assert [page.name for page in registry.study_pages] == ["reading"]
    assert build_registry([], {}).landings == {}  # the core's defaults live in auth.routes
