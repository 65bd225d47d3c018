"""Axis order in one place: the kit's canonical numpy order, SimpleITK's / MONAI's order, and reorientation.

Used by every notebook through the other helpers (01 display, 02 inspection, 03 resampling, 05 training,
06 evaluation); nothing else in the kit reorients an image, computes an orientation string, or reorders
per-axis values by hand.

An orientation string (DICOM letters, SimpleITK's convention) names where each SimpleITK index axis
(i, j, k) runs: 'LPS' is the identity, 'PIR' means i runs to posterior, j to inferior, k to right. numpy
(`sitk.GetArrayFromImage`) holds the index axes reversed (k, j, i). The kit reorients every series to
CANONICAL_ORIENTATION 'PIR', so that

- its canonical numpy order is CANONICAL_AXES = (LR, SI, AP): a sagittal slice per [k], superior up,
  anterior left;
- SimpleITK's index order of such an image, which is also MONAI's order for the kit's NIfTI files
  (patch sizes, flips, rotations), is MONAI_AXES = (AP, SI, LR).

Values are moved between orders by anatomical name (`reorder`), never by position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import SimpleITK as sitk

LR, SI, AP = "LR", "SI", "AP"  # left-right, superior-inferior, anterior-posterior
CANONICAL_ORIENTATION = "PIR"
_AXIS_OF_LETTER = {"L": LR, "R": LR, "S": SI, "I": SI, "A": AP, "P": AP}


def axis_names(orientation: str) -> tuple[str, str, str]:
    """Anatomical axis along each SimpleITK index axis (i, j, k) of an image stored in `orientation`."""
    names = tuple(_AXIS_OF_LETTER.get(letter) for letter in orientation.upper())
    if len(names) != 3 or None in names or len(set(names)) != 3:
        raise ValueError(f"{orientation!r} is not a 3D orientation (one of L/R, one of A/P, one of S/I)")
    return names  # type: ignore[return-value]


def numpy_order(sitk_values: Sequence) -> tuple:
    """Per-axis values in SimpleITK index order (i, j, k) -> numpy's order (k, j, i) of the same image."""
    return tuple(reversed(tuple(sitk_values)))


def sitk_order(numpy_values: Sequence) -> tuple:
    """Per-axis values in numpy's order (k, j, i) -> SimpleITK index order (i, j, k) of the same image."""
    return tuple(reversed(tuple(numpy_values)))


MONAI_AXES = axis_names(CANONICAL_ORIENTATION)  # (AP, SI, LR): SimpleITK index / MONAI order of the kit's files
CANONICAL_AXES = numpy_order(MONAI_AXES)  # (LR, SI, AP): numpy order of a canonical array


def reorder(values: Sequence, source: Sequence[str], target: Sequence[str]) -> tuple:
    """Per-axis values given along the anatomical axes `source`, returned along `target`."""
    if sorted(source) != sorted(target) or len(values) != len(source):
        raise ValueError(f"cannot reorder {len(values)} values from axes {tuple(source)} to {tuple(target)}")
    by_axis = dict(zip(source, values))
    return tuple(by_axis[name] for name in target)


def canonical_values(values: Sequence, orientation: str) -> tuple:
    """Per-index-axis values (size, spacing) of an image stored in `orientation` -> canonical (LR, SI, AP)."""
    return reorder(values, axis_names(orientation), CANONICAL_AXES)


def stored_values(canonical: Sequence, orientation: str) -> tuple:
    """Canonical (LR, SI, AP) values -> SimpleITK index order (i, j, k) of an image stored in `orientation`."""
    return reorder(canonical, CANONICAL_AXES, axis_names(orientation))


def monai_order(canonical: Sequence) -> tuple[int, ...]:
    """Canonical (LR, SI, AP) sizes -> MONAI's order for the kit's NIfTI files (AP, SI, LR), as ints."""
    return tuple(int(v) for v in reorder(canonical, CANONICAL_AXES, MONAI_AXES))


def monai_axis(name: str) -> int:
    """Index of an anatomical axis (LR, SI or AP) among MONAI's spatial axes of the kit's files."""
    return MONAI_AXES.index(name)


def in_monai_order(by_axis: Mapping[str, float]) -> tuple:
    """Values named by anatomical axis ({LR: .., SI: .., AP: ..}) as a tuple in MONAI's order."""
    return tuple(by_axis[name] for name in MONAI_AXES)


def canonical_to_monai(array: np.ndarray) -> np.ndarray:
    """A canonical numpy array (LR, SI, AP) as MONAI holds the same voxels (AP, SI, LR); contiguous."""
    return np.ascontiguousarray(np.transpose(array, [CANONICAL_AXES.index(a) for a in MONAI_AXES]))


def monai_to_canonical(array: np.ndarray) -> np.ndarray:
    """An array in MONAI's order (AP, SI, LR) back into canonical numpy order (LR, SI, AP); contiguous."""
    return np.ascontiguousarray(np.transpose(array, [MONAI_AXES.index(a) for a in CANONICAL_AXES]))


# ---------------------------------------------------------------- orientation strings and reorientation
def orientation_of(direction: Sequence[float]) -> str:
    """Three-letter orientation from direction cosines (the closest axes for an oblique image)."""
    return sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines([float(v) for v in direction])


def orientation(image: sitk.Image) -> str:
    """Three-letter orientation of an image from its direction cosines ('LPS' is the identity)."""
    return orientation_of(image.GetDirection())


def reorient(image: sitk.Image, target: str) -> sitk.Image:
    """A lossless permutation and flip of the voxels so the image is stored in orientation `target`."""
    return sitk.DICOMOrient(image, target)


def to_canonical(image: sitk.Image) -> sitk.Image:
    """Reorient so numpy axes are (left-right, S->I, A->P): CANONICAL_ORIENTATION."""
    return reorient(image, CANONICAL_ORIENTATION)


def canonical_grid(image: sitk.Image) -> dict:
    """The grid (size, spacing, origin, direction) that `to_canonical(image)` has, from the header alone: resampling
    onto it reads the image where it lies, so its voxels need not be permuted first (resample.preprocess)."""
    source = orientation(image)
    axes = [axis_names(source).index(name) for name in axis_names(CANONICAL_ORIENTATION)]
    flips = [source[i] != letter for i, letter in zip(axes, CANONICAL_ORIENTATION)]
    corner = [0, 0, 0]  # the voxel that becomes the canonical image's first one
    for i, flip in zip(axes, flips):
        corner[i] = image.GetSize()[i] - 1 if flip else 0
    direction = np.array(image.GetDirection()).reshape(3, 3)[:, axes] * np.where(flips, -1.0, 1.0)
    return {"size": [image.GetSize()[i] for i in axes], "spacing": [image.GetSpacing()[i] for i in axes],
            "origin": list(image.TransformIndexToPhysicalPoint(corner)), "direction": direction.ravel().tolist()}
