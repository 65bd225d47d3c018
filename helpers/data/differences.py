"""What differs between your scan and what the model saw (SPIDER: sagittal T1 and T2 lumbar spine MR, slices
mostly 3.3 mm or thinner), and what to look at because of it: the one `check:` line prediction prints.

The model is still run where it can be (the result is written): the line says where to look before trusting it.
The scan's side is read here (orientation of the acquisition, slice spacing, the sequence a DICOM header names);
the prediction's side (no vertebra found: no lumbar spine in view?) is added by the predictor.

Used by notebook 07 and `python -m helpers predict` (helpers/inference/predict.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from helpers.data.dicom_study import plane_of

if TYPE_CHECKING:
    import SimpleITK as sitk

    from helpers.data.dicom_series import InputScan

THICK_SLICES_MM = 5.0  # SPIDER: 3.3 mm in most 2D series (UMC), 0.9 mm in T2 SPACE; a few series up to 9.6 mm
ANISOTROPIC = 1.5  # an image file's largest spacing over its smallest above this: the largest is the slice axis
SEEN_WEIGHTINGS = ("T1", "T2")


def acquisition_plane(image: sitk.Image) -> str:
    """The plane an image file was acquired in, from its thickest axis ('' for a near-isotropic 3D image, whose
    plane the geometry cannot tell)."""
    spacing = np.array(image.GetSpacing(), dtype=float)
    if spacing.max() < ANISOTROPIC * spacing.min():
        return ""
    axis = int(np.argmax(spacing))
    direction = np.array(image.GetDirection(), dtype=float).reshape(3, 3)
    return plane_of(direction[:, axis])


def slice_spacing(scan: InputScan) -> float:
    """mm between the acquisition's slices: a DICOM series' third axis; an image file's largest spacing."""
    spacing = scan.image.GetSpacing()
    return float(spacing[2] if scan.chosen is not None else max(spacing))


def scan_differences(scan: InputScan) -> list[str]:
    """What differs from SPIDER's series in the scan itself, each with what to look at."""
    items = []
    plane = scan.chosen.plane if scan.chosen is not None else acquisition_plane(scan.image)
    if plane and plane != "sagittal":
        items.append(f"{plane} slices (the model saw sagittal ones; yours were resampled to its grid): look at the "
                     "discs and the vertebrae's upper and lower edges in the sagittal view, where the slices blur them")
    thickness = slice_spacing(scan)
    if thickness > THICK_SLICES_MM:
        items.append(f"slices {thickness:.1f} mm apart (SPIDER's mostly 3.3 mm or less): look at the lateral slices "
                     "and the thin structures (discs, canal), where partial volume blurs them")
    if scan.chosen is not None:
        weighting, modality = scan.chosen.weighting, scan.chosen.modality
        if modality and modality != "MR":
            items.append(f"modality {modality}, not MR (the model saw MR only): expect nothing usable")
        elif weighting and weighting not in SEEN_WEIGHTINGS:
            items.append(f"a {weighting} sequence (the model saw T1 and T2): look at every structure's border, where "
                         "its contrast differs")
    return items


def prediction_differences(vertebrae: int) -> list[str]:
    """What the prediction itself suggests differs: too few vertebrae found for a lumbar spine in view."""
    if vertebrae == 0:
        return ["no vertebra found: is the lumbar spine in the field of view? Look at the scan itself"]
    if vertebrae < 3:
        return [f"only {vertebrae} vertebra(e) found (SPIDER's scans show 3 to 9): is the lumbar spine in the field "
                "of view? Look at the scan's upper and lower ends"]
    return []


def check_line(items: list[str]) -> str:
    """The one line printed when anything differs ('' when nothing does)."""
    return ("check: " + "; ".join(items)) if items else ""
