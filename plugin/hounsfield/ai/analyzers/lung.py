"""Lung segmentation, lung volumes and the emphysema index (LAA%-950) on chest CT.

Segmentation after Hu, Hoffman & Reinhardt, "Automatic lung segmentation for accurate
quantitation of volumetric X-ray CT images", IEEE TMI 20(6), 2001:

1. an optimal threshold between the body and the air: starting at -500 HU, the mean of the
   means of the voxels below and above it, iterated (clamped to -700..-300 HU);
2. the air below it, less the air outside the body: in each axial slice, the air connected
   to the image's border (per slice, not in 3D, so that an airway reaching the nose or
   mouth does not make the lungs "outside");
3. the trachea and main bronchi removed: Hu et al. grow them from the trachea found in the
   first slices. Here the trachea is the near-midline, trachea-sized (20 to 800 mm^2)
   region of airway-lumen air (below ``airway_hu``, -950 HU: a lumen is nearly pure air,
   parenchyma is about -850 HU) in the most superior slice with air in the body; it is
   followed down slice by slice, keeping the regions that overlap the previous slice's and
   stay airway-sized, which follows the carina's split into both bronchi and stops where
   they open into the lung or leak into emphysema (a region more than twice the size of
   the airway above it). The airways, grown by 3 mm to take their partial-volume wall, are
   removed: that is what leaves the two lungs as two separate components. The trachea
   is looked for in the first ``seed_search_mm`` (20 mm) below the first slice with air
   in the body; without one there, nothing is removed;
4. the lungs: the largest remaining 3D component, and the second if it has at least
   ``second_lung_ratio`` of the first's volume (bowel gas does not); less than
   ``min_lung_ml`` of it raises AnalysisError("no lung fields in this volume") (a head or
   an abdomen), as the analysis has nothing to say then. An abdominal CT holding only a
   sliver of the lung bases and much bowel gas may have its gas taken for a lung: the
   analyzer is meant for chest CT;
5. smoothing, per lung: an in-plane closing (3 mm), then the holes of each slice filled,
   which puts the vessels and bronchial walls inside the lung back into it (Hu's closing
   step).

Left and right: with two components, the one further along DICOM's +x (towards patient
left, LPS) is the left lung.

Emphysema index: LAA%-950, the percentage of lung voxels below -950 HU (Gevenois et al.,
AJRCCM 1996, validated against histology; used by the Fleischner Society statement, Lynch
et al., Radiology 2015). ``emphysema_percent`` (5 %) is the cut-off commonly used for
"emphysema present": at or above it a MODERATE finding, below it a NORMAL one stating the
value. Confidence: 0.5 at the cut-off, 0.1 more per percentage point away from it, at
most 0.9: noise, kernel, slice thickness and the depth of inspiration move LAA% by a few
points, so a value near 5 % says little either way. LAA% is counted on the volume's own
voxels; the mask is computed on a grid of about ``grid_mm`` (1.5 mm) voxels (block means)
and expanded back: on a synthetic 512 x 512 x 300 chest (0.7 mm pixels, 0.8 mm slices)
the analysis takes 1.5-2.1 s on two cores, the mask differs from the truth by 1.3 % of
its voxels (Dice 0.993), along the edges, and LAA%-950 is 7.75 % for a truth of 7.77 %.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from hounsfield.ai.analyzers.grid import (
    EIGHT,
    FACES,
    IN_PLANE,
    CoarseVolume,
    coarse_axial,
    fill_holes_per_slice,
    reaching_border,
)
from hounsfield.ai.analyzers.regions import bounding_box, region_sizes
from hounsfield.ai.model import (
    Analysis,
    AnalysisError,
    Finding,
    Measurement,
    Segmentation,
    Severity,
    Volume,
)

LUNG = ("39607008", "Lung")  # SNOMED CT


def body_threshold(voxels: np.ndarray, start: float = -500.0) -> float:
    """Hu et al.'s optimal threshold between body and air, on a histogram of the voxels
    (from -1024 to 400 HU: bone and metal would pull the body's mean up)."""
    values = voxels[:: max(1, voxels.shape[0] // 64)]  # at most ~64 slices: the mean is stable
    counts, edges = np.histogram(values, bins=356, range=(-1024.0, 400.0))
    centres = (edges[:-1] + edges[1:]) / 2
    threshold = start
    for _ in range(50):
        below = centres < threshold
        if counts[below].sum() == 0 or counts[~below].sum() == 0:
            return start
        low = np.average(centres[below], weights=counts[below])
        high = np.average(centres[~below], weights=counts[~below])
        moved = float(np.clip((low + high) / 2, -700.0, -300.0))
        if abs(moved - threshold) < 0.5:
            return moved
        threshold = moved
    return threshold


@dataclass(frozen=True)
class LungAnalyzer:
    """Lungs, their volumes and LAA%-950 on chest CT (see the module's docstring)."""

    name: str = "lung"
    version: str = "1"
    laa_threshold_hu: float = -950.0
    emphysema_percent: float = 5.0
    airway_hu: float = -950.0
    min_airway_mm2: float = 20.0  # a 5 mm lumen
    max_airway_mm2: float = 800.0  # a 32 mm lumen: any trachea
    airway_midline: float = 0.15  # of the body's width, around its middle
    airway_rim_mm: float = 3.0
    seed_search_mm: float = 20.0  # below the first slice with air in the body
    min_lung_ml: float = 100.0
    second_lung_ratio: float = 0.2
    closing_mm: float = 3.0
    grid_mm: float = 1.5

    def analyze(self, volume: Volume) -> Analysis:
        grid = coarse_axial(volume, self.grid_mm, what="lung analysis")
        coarse, spacing = grid.coarse, grid.spacing
        threshold = body_threshold(coarse)
        air = coarse < threshold
        outside = reaching_border(air)  # the air outside the body, slice by slice
        inside = air & ~outside
        airways = self._airways(
            coarse, inside, ~outside, spacing, superior_last=volume.normal[2] > 0
        )
        if airways.any():
            box = bounding_box(airways, margin=int(np.ceil(self.airway_rim_mm / spacing[1])) + 1)
            assert box is not None
            rim = max(1, round(self.airway_rim_mm / spacing[1]))
            grown = ndimage.binary_dilation(airways[box], structure=IN_PLANE, iterations=rim)
            inside[box] &= ~grown
        lungs = self._lungs(inside, grid.voxel_ml)
        labels = self._smooth(lungs, spacing)
        return self._report(volume, grid, labels)

    def _airways(
        self,
        coarse: np.ndarray,
        inside: np.ndarray,
        body: np.ndarray,
        spacing: tuple[float, ...],
        *,
        superior_last: bool,
    ) -> np.ndarray:
        """The trachea and bronchi, followed down from the most superior slice with air in
        the body (see the module's docstring)."""
        airways = np.zeros(inside.shape, dtype=bool)
        pixel_mm2 = spacing[1] * spacing[2]
        smallest = self.min_airway_mm2 / pixel_mm2
        largest = self.max_airway_mm2 / pixel_mm2
        slices = range(inside.shape[0] - 1, -1, -1) if superior_last else range(inside.shape[0])
        search = max(1, round(self.seed_search_mm / spacing[0]))
        current: np.ndarray | None = None
        for k in slices:
            if current is None and not inside[k].any():
                continue
            lumen, count = ndimage.label(inside[k] & (coarse[k] < self.airway_hu), structure=EIGHT)
            areas = np.bincount(lumen.ravel(), minlength=count + 1)
            if current is None:
                seed = self._trachea(lumen, areas, body[k], smallest, largest)
                if seed is None:
                    search -= 1
                    if search == 0:
                        return airways
                    continue
                current = lumen == seed
            else:
                touching = np.unique(lumen[ndimage.binary_dilation(current) & (lumen > 0)])
                limit = 2 * int(current.sum()) + 4
                keep = [
                    int(label)
                    for label in touching
                    if areas[label] <= largest and areas[label] <= limit
                ]
                if not keep:
                    break
                current = np.isin(lumen, keep)
            airways[k] = current
        return airways

    def _trachea(
        self,
        lumen: np.ndarray,
        areas: np.ndarray,
        body: np.ndarray,
        smallest: float,
        largest: float,
    ) -> int | None:
        columns = np.flatnonzero(body.any(axis=0))
        if columns.size == 0:
            return None
        middle = (columns[0] + columns[-1]) / 2
        width = columns[-1] - columns[0] + 1
        best: tuple[float, int] | None = None
        for label in range(1, areas.size):
            if not smallest <= areas[label] <= largest:
                continue
            distance = abs(float(np.nonzero(lumen == label)[1].mean()) - middle)
            if distance <= self.airway_midline * width and (best is None or distance < best[0]):
                best = (distance, label)
        return None if best is None else best[1]

    def _lungs(self, inside: np.ndarray, coarse_ml: float) -> np.ndarray:
        """Labels 1 (and 2): the largest air components in the body."""
        labels, count = ndimage.label(inside, structure=FACES)
        sizes = region_sizes(labels, count)
        order = np.argsort(sizes)[::-1]
        if count == 0 or sizes[order[0]] * coarse_ml < self.min_lung_ml:
            raise AnalysisError("no lung fields in this volume")
        kept = [order[0]]
        if count > 1 and sizes[order[1]] >= self.second_lung_ratio * sizes[order[0]]:
            kept.append(order[1])
        lookup = np.zeros(count + 1, dtype=np.int8)
        for number, label in enumerate(kept, start=1):
            lookup[label] = number
        return lookup[labels]

    def _smooth(self, lungs: np.ndarray, spacing: tuple[float, ...]) -> np.ndarray:
        """Each lung closed in-plane and its slices' holes filled (Hu's smoothing)."""
        iterations = max(1, round(self.closing_mm / spacing[1]))
        out = np.zeros_like(lungs)
        for number in (1, 2):
            mask = lungs == number
            box = bounding_box(mask, margin=iterations + 1)
            if box is None:
                continue
            part = ndimage.binary_closing(mask[box], structure=IN_PLANE, iterations=iterations)
            part = fill_holes_per_slice(part)
            free = out[box] == 0
            out[box][part & free] = number
        return out

    def _report(self, volume: Volume, grid: CoarseVolume, labels: np.ndarray) -> Analysis:
        full = grid.expand(labels)
        low = grid.voxels < self.laa_threshold_hu
        lung = full > 0
        total = int(lung.sum())
        emphysematous = int((low & lung).sum())
        laa = 100.0 * emphysematous / total
        measurements = [Measurement("Lung volume", round(total * volume.voxel_ml, 1), "ml", "Lung")]
        if labels.max() == 2:
            sides = {}
            for number in (1, 2):
                centre = ndimage.center_of_mass(labels == number)
                voxel = tuple(
                    c * f + (f - 1) / 2 for c, f in zip(centre, grid.factors, strict=True)
                )
                x = volume.patient_point((voxel[0], voxel[1], voxel[2]))[0]
                part = full == number
                count = int(part.sum())
                sides[number] = (x, count, 100.0 * int((low & part).sum()) / count)
            left, right = sorted(sides.values(), key=lambda side: -side[0])
            for side, (_, count, side_laa) in (("Left", left), ("Right", right)):
                measurements.append(
                    Measurement(
                        f"{side} lung volume", round(count * volume.voxel_ml, 1), "ml", "Lung"
                    )
                )
                measurements.append(
                    Measurement(f"{side} lung LAA%-950", round(side_laa, 2), "%", "Lung")
                )
        measurements.append(Measurement("LAA%-950", round(laa, 2), "%", "Lung"))
        confidence = round(0.5 + min(abs(laa - self.emphysema_percent) / 10.0, 0.4), 2)
        if laa >= self.emphysema_percent:
            finding = Finding(
                key="emphysema",
                category="emphysema",
                description=(
                    f"Emphysema present: LAA%-950 {laa:.1f} % of the lung volume, "
                    f"at or above the {self.emphysema_percent:g} % cut-off"
                ),
                severity=Severity.MODERATE,
                confidence=confidence,
                volume_ml=round(emphysematous * volume.voxel_ml, 1),
                segment="Lung",
            )
        else:
            finding = Finding(
                key="emphysema",
                category="emphysema",
                description=(
                    f"LAA%-950 {laa:.1f} % of the lung volume, "
                    f"below the {self.emphysema_percent:g} % emphysema cut-off"
                ),
                severity=Severity.NORMAL,
                confidence=confidence,
                segment="Lung",
            )
        return Analysis(
            self.name,
            self.version,
            (finding,),
            tuple(measurements),
            (Segmentation("Lung", lung, LUNG),),
        )
