"""Which arriving objects are refused: corrupt ones only, judged from their bytes.

Truth comes from pydicom's own test files (valid objects from many modalities and
syntaxes, and two it ships truncated) and from objects written here with pydicom.
"""

from __future__ import annotations

import io
import struct
import time

import pydicom
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

from hounsfield.intake.admission import judge
from hounsfield.intake.structure import summarize
from tests.support.stack import outcome_on_small_stack

DEPTH = 32
VALID = [  # pydicom ships these: many modalities, syntaxes and structures
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_bigendian.dcm",
    "MR_small_implicit.dcm",
    "MR_small_RLE.dcm",
    "JPEG2000.dcm",
    "JPEG2000-embedded-sequence-delimiter.dcm",
    "SC_ybr_full_422_uncompressed.dcm",
    "SC_rgb_rle_32bit_2frame.dcm",
    "examples_palette.dcm",
    "liver_1frame.dcm",
    "rtplan.dcm",
    "rtdose.dcm",
    "waveform_ecg.dcm",
    "test-SR.dcm",
    "reportsi.dcm",
    "UN_sequence.dcm",
    "nested_priv_SQ.dcm",
]


def file_bytes(ds: Dataset, syntax: str = ExplicitVRLittleEndian) -> bytes:
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def image(rows: int = 4, columns: int = 5, pixels: bytes | None = None) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID = "1.2.3.4"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.BitsAllocated, ds.BitsStored, ds.HighBit = 1, 16, 16, 15
    ds.PhotometricInterpretation, ds.PixelRepresentation = "MONOCHROME2", 0
    ds.PixelData = pixels if pixels is not None else bytes(rows * columns * 2)
    return ds


def nested(depth: int) -> Dataset:
    """An image whose ReferencedImageSequence nests ``depth`` sequences deep."""
    ds = image()
    inner = Dataset()
    for _ in range(depth):
        item = Dataset()
        item.ReferencedImageSequence = Sequence([inner])
        inner = item
    ds.ReferencedImageSequence = inner.ReferencedImageSequence
    return ds


@pytest.mark.parametrize("name", VALID)
def test_valid_objects_of_every_kind_are_admitted(name: str) -> None:
    data = open(get_testdata_file(name), "rb").read()  # noqa: SIM115 - read at once
    assert judge(data, max_depth=DEPTH) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("MR_truncated.dcm", "ends inside PixelData (7FE0,0010): 8130 of 8192 bytes present"),
        ("rtplan_truncated.dcm", "BeamSequence (300A,00B0) declares 976 bytes; 711 remain"),
    ],
)
def test_objects_cut_short_are_refused_by_name(name: str, reason: str) -> None:
    refusal = judge(open(get_testdata_file(name), "rb").read(), max_depth=DEPTH)  # noqa: SIM115
    assert refusal is not None and reason in refusal.reason


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_pixel_data_shorter_than_its_header_is_refused(syntax: str) -> None:
    short = file_bytes(image(pixels=bytes(30)), syntax)
    refusal = judge(short, max_depth=DEPTH)
    assert refusal is not None
    assert "pixel data holds 30 bytes; 1 frame(s) of 5x4, 1 sample(s) of 16 bits need 40" in (
        refusal.reason
    )
    assert refusal.study_uid == "1.2.3.4"
    assert judge(file_bytes(image(), syntax), max_depth=DEPTH) is None


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
def test_nesting_is_bounded_by_the_limit(syntax: str) -> None:
    assert judge(file_bytes(nested(DEPTH), syntax), max_depth=DEPTH) is None
    refusal = judge(file_bytes(nested(DEPTH + 1), syntax), max_depth=DEPTH)
    assert refusal is not None and refusal.limit == "Limits.DicomDepth"
    assert f"sequences nested deeper than {DEPTH} levels" in refusal.reason


def test_a_hundred_thousand_levels_cost_a_loop_on_a_small_stack() -> None:
    """Raw undefined-length sequences and items, as deep as 1.6 MB allows: no recursion."""
    whole = file_bytes(image())
    meta_end = 132 + 12 + struct.unpack_from("<I", whole, 132 + 8)[0]
    level = struct.pack("<HH2s2xI", 0x0008, 0x1140, b"SQ", 0xFFFFFFFF)
    level += struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)
    data = whole[:meta_end] + level * 100_000
    started = time.monotonic()
    refusal = outcome_on_small_stack(lambda: judge(data, max_depth=DEPTH))
    assert refusal is not None and refusal.limit == "Limits.DicomDepth"
    assert time.monotonic() - started < 1


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_damaged_objects_get_a_verdict_never_an_exception(data: st.DataObject) -> None:
    """Cuts and flipped bytes anywhere: admitted or refused with a reason, nothing else."""
    original = open(get_testdata_file(data.draw(st.sampled_from(VALID))), "rb").read()  # noqa: SIM115
    damaged = bytearray(original[: data.draw(st.integers(0, len(original)))])
    for _ in range(data.draw(st.integers(0, 4))):
        if damaged:
            damaged[data.draw(st.integers(0, len(damaged) - 1))] = data.draw(st.integers(0, 255))
    summary = summarize(bytes(damaged), max_depth=DEPTH)
    assert summary.problem is None or summary.problem


def test_what_is_not_a_dicom_file_is_left_to_orthanc() -> None:
    assert judge(b"not DICOM at all", max_depth=DEPTH) is None
    assert judge(b"", max_depth=DEPTH) is None
    ds = pydicom.dcmread(get_testdata_file("no_meta.dcm"), force=True)
    assert ds  # a bare data set without file meta: Orthanc decides what it is
    assert judge(open(get_testdata_file("no_meta.dcm"), "rb").read(), max_depth=DEPTH) is None  # noqa: SIM115
