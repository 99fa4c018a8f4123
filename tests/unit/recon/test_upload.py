from __future__ import annotations

import os
from pathlib import Path

import pytest

from hounsfield.recon import spool
from hounsfield.recon.projections import ProjectionError
from hounsfield.recon.upload import parse_rtk_geometry as parse_with_limits

LIMITS = {"max_bytes": 1 << 20, "max_depth": 32}


def parse_rtk_geometry(document: bytes) -> dict:
    return parse_with_limits(document, **LIMITS)


def xml(globals_: str, projections: list[str]) -> bytes:
    body = "".join(f"<Projection>{p}</Projection>" for p in projections)
    root = "RTKThreeDCircularGeometry"
    return f'<{root} version="3">{globals_}{body}</{root}>'.encode()


def test_constant_values_may_sit_globally_or_in_each_projection() -> None:
    parsed = parse_rtk_geometry(
        xml(
            "<SourceToIsocenterDistance>1000</SourceToIsocenterDistance>"
            "<ProjectionOffsetX>2</ProjectionOffsetX>",
            [
                f"<GantryAngle>{a}</GantryAngle><SourceToDetectorDistance>1536</SourceToDetectorDistance>"
                for a in (0, 1.5, 3)
            ],
        )
    )
    assert parsed == {
        "source_to_isocenter": 1000.0,
        "source_to_detector": 1536.0,
        "angles": (0.0, 1.5, 3.0),
        "detector_offset": (2.0, 0.0),
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            xml(
                "<SourceToIsocenterDistance>1000</SourceToIsocenterDistance>",
                [
                    f"<GantryAngle>{a}</GantryAngle><SourceToDetectorDistance>{1500 + a}"
                    "</SourceToDetectorDistance>"
                    for a in (0, 1)
                ],
            ),
            "SourceToDetectorDistance varies",
        ),
        (
            xml(
                "<SourceToIsocenterDistance>1000</SourceToIsocenterDistance>"
                "<SourceToDetectorDistance>1536</SourceToDetectorDistance>",
                ["<GantryAngle>0</GantryAngle><OutOfPlaneAngle>5</OutOfPlaneAngle>"],
            ),
            "non-zero OutOfPlaneAngle",
        ),
        (
            xml(
                "<SourceToDetectorDistance>1536</SourceToDetectorDistance>",
                ["<GantryAngle>0</GantryAngle>"],
            ),
            "lacks SourceToIsocenterDistance",
        ),
        (xml("", []), "no Projection"),
        (b"<Other/>", "not RTKThreeDCircularGeometry"),
        (b"<nope", "geometry XML: malformed XML"),
        (b"<a>" * 40 + b"</a>" * 40, "nested deeper than 32 levels"),
        (
            b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
            b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><l>&b;</l>',
            "DTD or entities is not accepted",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            b"<r>&x;</r>",
            "DTD or entities is not accepted",
        ),
        (
            xml(
                "<SourceToIsocenterDistance>far</SourceToIsocenterDistance>",
                ["<GantryAngle>0</GantryAngle>"],
            ),
            "SourceToIsocenterDistance is not a number",
        ),
    ],
)
def test_what_a_circular_orbit_cannot_be_is_refused(document: bytes, message: str) -> None:
    with pytest.raises(ProjectionError, match=message):
        parse_rtk_geometry(document)


def test_abandoned_spool_folders_are_pruned_and_nothing_else(tmp_path: Path) -> None:
    old, now = 1_000_000.0, 1_000_000.0 + spool.ABANDONED_AFTER_SECONDS + 1
    abandoned = spool.spool(tmp_path, [memoryview(b"tiff")], b"{}").directory
    waiting = spool.spool(tmp_path, [memoryview(b"tiff")], b"{}").directory
    recent = spool.spool(tmp_path, [memoryview(b"tiff")], b"{}").directory
    cut_short = tmp_path / ".abc.partial"
    cut_short.mkdir()
    for folder in (abandoned, waiting, cut_short):
        os.utime(folder, (old, old))
    os.utime(recent, (now - 10, now - 10))
    pruned = spool.prune_abandoned(tmp_path, live={waiting}, now=now)
    assert sorted(pruned) == sorted([abandoned, cut_short])
    assert sorted(tmp_path.iterdir()) == sorted([waiting, recent])
    assert spool.read(waiting).projections[0].read_bytes() == b"tiff"
