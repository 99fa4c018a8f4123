"""Metal and other high-density foreign bodies on CT and CBCT.

Definition: a foreign body is a connected region (26-connected, so that a thin wire or
the blooming rim of a clip stays one object) of voxels above ``threshold_hu``. The default
2500 HU lies above every tissue (cortical bone stays under about 2000 HU) except, at
times, tooth enamel; metals (steel, titanium, cobalt-chrome, amalgam) saturate the scale
(3071 HU on the standard 12-bit scale, far higher on the extended one). The one common
non-metal above it is undiluted iodinated contrast in the injected vein (roughly 25-30 HU
per mg of iodine per ml at 120 kV, so a 300 mg/ml contrast medium saturates too). CBCT
values are not calibrated HU, but metal still lies at the top of their range.

Each region is one finding, ``metal-1``, ``metal-2``... by volume (largest first), then by
position (slice, row, column of the centroid), so that the keys are the same on every
run. ``size_mm`` is the largest extent of its bounding box along any axis (voxels times
spacing), ``volume_ml`` its voxel count times the voxel volume (see ``regions``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hounsfield.ai.analyzers.regions import (
    Region,
    bounding_box,
    measure_regions,
    regions_mask,
    require_volume,
)
from hounsfield.ai.model import Analysis, Finding, Measurement, Segmentation, Severity, Volume

FOREIGN_BODY = ("19227008", "Foreign body")  # SNOMED CT, in DICOM CID 7151 and 7158
EVERY_NEIGHBOUR = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class MetalAnalyzer:
    """Metal and high-density foreign bodies (regions above ``threshold_hu``).

    ``min_volume_ml`` (default 0.01 ml = 10 mm^3) drops isolated voxels that noise,
    enamel or a dense calcification push over the threshold (a 0.7 x 0.7 x 1 mm voxel is
    0.5 mm^3, so at least 20 of them are needed), while keeping a surgical clip, which
    blooms to several mm on CT. Severity is MINOR: a foreign body is worth noting, rarely
    urgent. Confidence is 0.9 when the region's peak reaches ``saturation_hu`` (3000 HU,
    where metals go and tissue does not; not 1, as undiluted contrast in the injected vein
    goes there too), else 0.6: a region peaking between 2500 and 3000 HU may be enamel.
    """

    name: str = "metal"
    version: str = "1"
    threshold_hu: float = 2500.0
    min_volume_ml: float = 0.01
    saturation_hu: float = 3000.0

    def analyze(self, volume: Volume) -> Analysis:
        voxels = require_volume(volume)
        dense = voxels > self.threshold_hu
        box = bounding_box(dense, margin=1)
        regions: list[Region] = []
        segmentations: tuple[Segmentation, ...] = ()
        if box is not None:
            labels, _ = ndimage.label(dense[box], structure=EVERY_NEIGHBOUR)
            regions = measure_regions(
                labels,
                voxels[box],
                volume,
                min_ml=self.min_volume_ml,
                offset=tuple(s.start for s in box),
            )
            if regions:
                mask = regions_mask(labels, regions, voxels.shape, box)
                segmentations = (Segmentation("Metal", mask, FOREIGN_BODY, abnormal=True),)
        findings = tuple(
            Finding(
                key=f"metal-{number}",
                category="foreign-body",
                description=(
                    f"Metal or high-density object, {region.size_mm:.1f} mm, "
                    f"{region.volume_ml:.2f} ml (peak {region.peak:.0f} HU)"
                ),
                severity=Severity.MINOR,
                confidence=0.9 if region.peak >= self.saturation_hu else 0.6,
                centroid=region.centroid,
                extent=region.extent,
                size_mm=round(region.size_mm, 1),
                volume_ml=round(region.volume_ml, 3),
                segment="Metal",
            )
            for number, region in enumerate(regions, start=1)
        )
        if not findings:
            findings = (
                Finding(
                    key="metal-none",
                    category="foreign-body",
                    description=(
                        f"No metal or high-density object (above {self.threshold_hu:.0f} HU) found"
                    ),
                    severity=Severity.NORMAL,
                    confidence=0.9,
                ),
            )
        total = sum(region.volume_ml for region in regions)
        measurements = (
            Measurement("Metal objects", float(len(regions)), "1"),
            Measurement(
                "Metal volume", round(total, 3), "ml", segment="Metal" if regions else None
            ),
        )
        return Analysis(self.name, self.version, findings, measurements, segmentations)
