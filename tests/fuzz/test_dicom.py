"""The store path under fuzz, on each road: valid objects damaged every way (cut, bytes
flipped, lengths that lie, nesting, pieces repeated). Every answer must be a verdict (a
4xx, a STOW failure, a C-STORE failure status, or stored) and the archive must change
exactly as it says: a refused object adds nothing, a stored one is there whole.

C-STORE objects are encoded by pydicom (hostile in what they say, well formed in how):
DCMTK 3.6.7 reads a C-STORE's bytes before any plugin sees them, hangs until its timeout on
lengths that lie, and crashes Orthanc at about 10,000 nested sequences (shared notes;
README, "The DICOM port").
"""

from __future__ import annotations

import io
import json
import struct

import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid
from pynetdicom import AE

from tests.fuzz.conftest import Target
from tests.fuzz.strategies import Blob, damaged_dicom, sequence_ends, sequence_levels
from tests.support.angiography import angiography_run

SEEDS = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "angiography"]
# pydicom encodes recursively (four Python frames a level): well past our limit (32), well
# within Python's.
C_STORE_NESTING = 200
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def seed_file(name: str, serial: int) -> tuple[bytes, int]:
    """A valid file with UIDs of its own, and where its file meta ends."""
    ds = (
        angiography_run(f"fuzz-{serial}")
        if name == "angiography"
        else pydicom.dcmread(get_testdata_file(name))
    )
    ds.SOPInstanceUID = generate_uid(entropy_srcs=[name, str(serial), "instance"])
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SeriesInstanceUID = generate_uid(entropy_srcs=[name, str(serial), "series"])
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    data = buffer.getvalue()
    return data, 132 + 12 + struct.unpack_from("<I", data, 140)[0]


@st.composite
def damaged_objects(draw: st.DrawFn, max_nesting: int) -> Blob:
    data, meta_end = seed_file(draw(st.sampled_from(SEEDS)), draw(st.integers(0, 10**9)))
    return draw(damaged_dicom(data, meta_end, max_nesting))


def stow_body(dicom: bytes) -> bytes:
    return b"--fuzzb\r\nContent-Type: application/dicom\r\n\r\n" + dicom + b"\r\n--fuzzb--\r\n"


@SETTINGS
@given(dicom=damaged_objects(max_nesting=150_000), road=st.sampled_from(["rest", "stow"]))
def test_uploads_get_a_verdict_and_the_archive_agrees(
    archive: Target, dicom: Blob, road: str
) -> None:
    before = archive.instance_count()
    if road == "rest":
        status, answer = archive.send("POST", "/instances", bytes(dicom))
        stored = status == 200
        assert stored or status in (400, 413), (status, answer[:200])
    else:
        headers = {"Content-Type": 'multipart/related; type="application/dicom"; boundary=fuzzb'}
        status, answer = archive.send("POST", "/dicom-web/studies", stow_body(dicom), headers)
        stored = status == 200
        assert stored or status in (400, 409, 413), (status, answer[:200])
    after = archive.instance_count()
    if not stored:
        assert after == before, "a refused object changed the archive"
    elif road == "rest":
        reply = json.loads(answer)
        assert after == before + (reply["Status"] == "Success")
        kept = archive.server.get(f"/instances/{reply['ID']}/file").content
        assert reply["Status"] != "Success" or kept == bytes(dicom), "stored, but not whole"
    else:
        assert after in (before, before + 1)


@st.composite
def hostile_datasets(draw: st.DrawFn) -> pydicom.Dataset:
    """Objects a C-STORE sender can encode (DCMTK reads the association's bytes before any
    plugin, so bytes it cannot read never reach ours): hostile in what they say."""
    name = draw(st.sampled_from(SEEDS))
    serial = draw(st.integers(0, 10**9))
    ds = pydicom.dcmread(io.BytesIO(seed_file(name, serial)[0]))
    kind = draw(st.sampled_from(["pixels", "values", "nesting", "private", "none"]))
    if kind == "pixels" and "PixelData" in ds:
        ds.PixelData = ds.PixelData[: draw(st.integers(0, len(ds.PixelData)))]
    elif kind == "values":
        for keyword in draw(
            st.lists(
                st.sampled_from(
                    ["Rows", "Columns", "BitsAllocated", "NumberOfFrames", "SamplesPerPixel"]
                ),
                max_size=3,
            )
        ):
            setattr(ds, keyword, draw(st.integers(0, 65535)))
    elif kind == "nesting":
        inner = pydicom.Dataset()
        for _ in range(draw(st.integers(30, C_STORE_NESTING))):
            outer = pydicom.Dataset()
            outer.ReferencedImageSequence = [inner]
            inner = outer
        ds.ReferencedImageSequence = inner.ReferencedImageSequence
    elif kind == "private":
        ds.add_new(0x00091010, "LO", "x" * draw(st.integers(0, 60)))
        ds.add_new(0x00091011, "OB", draw(st.binary(max_size=5000)))
    return ds


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(ds=hostile_datasets())
def test_c_store_gets_a_status_and_the_archive_agrees(archive: Target, ds: pydicom.Dataset) -> None:
    entity = AE(ae_title="FUZZER")
    entity.dimse_timeout = entity.network_timeout = 20
    entity.add_requested_context(ds.SOPClassUID, ds.file_meta.TransferSyntaxUID)
    before = archive.instance_count()
    association = entity.associate("127.0.0.1", archive.server.dicom_port, ae_title="HOUNSFIELD")
    assert association.is_established
    try:
        status = association.send_c_store(ds)
    finally:
        association.release()
    assert archive.server.process.poll() is None, "Orthanc died on a C-STORE"
    assert status, "no C-STORE response"
    after = archive.instance_count()
    if status.Status == 0x0000:  # stored (or stored before: C-STORE says success either way)
        assert after in (before, before + 1)
    else:
        assert after == before, f"refused ({status.Status:#06x}) yet the archive changed"


def test_a_hundred_thousand_levels_are_refused_before_dcmtk_reads_them(archive: Target) -> None:
    """Over REST and STOW our check runs before Orthanc's parser, which would crash."""
    data, meta_end = seed_file("CT_small.dcm", 1)
    deep = data[:meta_end] + sequence_levels(100_000) + sequence_ends(100_000) + data[meta_end:]
    status, answer = archive.send("POST", "/instances", deep)
    assert status == 400 and b"Limits.DicomDepth" in answer


def test_the_archive_is_whole_after_the_dicom_fuzz(archive: Target) -> None:
    archive.assert_unharmed()
