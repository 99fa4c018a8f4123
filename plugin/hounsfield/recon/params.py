"""What a simulation or a reconstruction may be asked for, validated at the door."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from hounsfield.recon.geometry import CircularGeometry
from hounsfield.recon.projections import rtk_gantry_angle

# Linear attenuation of water at the ~70 keV effective energy of a CBCT beam (per mm).
WATER_ATTENUATION_PER_MM = 0.0195

# ADMM-TV's smoothing in units that carry over between acquisitions (see tv_penalties):
# on low-dose phantoms 4 cut FDK's noise 2.5-4x with the tissue means unchanged.
TV_STRENGTH = 4.0


class OrderedPatient(BaseModel):
    """Who and what an acquisition is for, beyond the patient ID and name: the order's
    accession number (how an arriving study finds its order and reaches the reading
    worklist with its priority) and the patient's birth date and sex."""

    accession_number: str = Field("", max_length=16, pattern=r"^[^\\\x00-\x1f]*$")
    patient_birth_date: str = Field("", pattern=r"^(\d{8})?$")
    patient_sex: Literal["M", "F", "O", ""] = ""
    # The one the order gave the Modality Worklist, so that the study is the one ordered.
    study_instance_uid: str | None = Field(None, pattern=r"^[0-9.]{1,64}$")

    def order_attributes(self) -> dict[str, str]:
        return {
            "StudyInstanceUID": self.study_instance_uid or "",
            "AccessionNumber": self.accession_number,
            "PatientBirthDate": self.patient_birth_date,
            "PatientSex": self.patient_sex,
        }


class SimulationRequest(OrderedPatient):
    """A Shepp-Logan acquisition on a circular orbit, as a scanner would send it."""

    model_config = ConfigDict(extra="forbid")

    patient_id: str = Field("PHANTOM", min_length=1, max_length=64)
    patient_name: str = Field("Shepp^Logan", max_length=64)
    study_description: str = Field("CBCT phantom (simulated)", max_length=64)
    projections: int = Field(180, ge=16, le=2000)
    detector_columns: int = Field(128, ge=16, le=2048)
    detector_rows: int = Field(96, ge=16, le=2048)
    pixel_spacing_mm: float = Field(1.0, gt=0.01, le=5.0)
    arc_degrees: float = Field(360.0, ge=90.0, le=360.0)
    first_angle_degrees: float = Field(0.0, ge=-360.0, le=360.0)
    source_to_isocenter_mm: float = Field(500.0, ge=10.0, le=5000.0)
    source_to_detector_mm: float = Field(800.0, ge=10.0, le=5000.0)
    i0: float = Field(50000.0, ge=100.0, le=65535.0)
    noise: bool = False
    phantom_radius_mm: float | None = Field(None, gt=0.0, le=1000.0)

    def geometry(self) -> CircularGeometry:
        """The orbit asked for (angles as a C-arm gives them: PositionerPrimaryAngle);
        GeometryError if it could not be a real one."""
        step = self.arc_degrees / self.projections
        angles = (self.first_angle_degrees + step * k for k in range(self.projections))
        return CircularGeometry(
            self.source_to_isocenter_mm,
            self.source_to_detector_mm,
            tuple(rtk_gantry_angle(angle) for angle in angles),
            (self.pixel_spacing_mm, self.pixel_spacing_mm),
            (self.detector_columns, self.detector_rows),
        )


class ReconstructionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    series: str = Field(min_length=1, max_length=64, description="Orthanc id of the projections")
    method: str = Field(
        "fdk", description="a module of hounsfield.recon.methods: fdk, sart, cg, tv"
    )
    hann_cut: float = Field(1.0, gt=0.0, le=1.0, description="FDK: ramp filter's Hann cut-off")
    iterations: int | None = Field(None, ge=1, le=50, description="SART (5), CG (10), TV (10)")
    projections_per_subset: int = Field(10, ge=1, le=1000, description="SART: ordered subsets")
    relaxation: float = Field(0.9, gt=0.0, le=2.0, description="SART: lambda")
    tv_strength: float = Field(
        TV_STRENGTH, gt=0.0, le=1000.0, description="TV: smoothing, relative to the data"
    )
    voxels: int | None = Field(None, ge=16, le=1024, description="voxels across the field")
    water_attenuation: float = Field(WATER_ATTENUATION_PER_MM, gt=0.0, le=1.0)
    preview: bool = Field(False, description="half resolution, at most 128 voxels across")

    @field_validator("method")
    @classmethod
    def _a_known_method(cls, method: str) -> str:
        from hounsfield.recon.methods import METHODS  # its modules import this one

        if method not in METHODS:
            raise ValueError(f"unknown method; one of: {', '.join(sorted(METHODS))}")
        return method


def tv_penalties(
    strength: float, rays: int, voxels: int, water_attenuation: float
) -> tuple[float, float]:
    """RTK's ADMM-TV (alpha, beta) for a smoothing ``strength`` given in water units.

    The data term grows with the number of rays and the TV term with the number of
    voxels, so both weights scale by rays/voxels; alpha is in the volume's units
    (attenuation per mm, hence x water), beta is unit-free. beta = 10 alpha (in water
    units) balanced bias against noise best on the test phantoms.
    """
    balance = strength * rays / voxels
    return balance * water_attenuation, 10.0 * balance
