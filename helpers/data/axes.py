"""Axis order in one place: the kit's one order for per-axis values, numpy's order of arrays, and reorientation.

Used by every notebook through the other helpers (01 display, 02 inspection, 03 resampling, 05 training,
06 evaluation); nothing else in the kit reorients an image, computes an orientation string, or reorders
per-axis values by hand.

An orientation string (DICOM letters, SimpleITK's convention) names where each SimpleITK index axis
(i, j, k) runs: 'LPS' is the identity, 'PIR' means i runs to posterior, j to inferior, k to right. The kit
reorients every series to CANONICAL_ORIENTATION 'PIR', and then has one order:

- AXES = (AP, SI, LR): the order of every per-axis value in the kit (patch sizes, spacings, grid sizes, in
  the profiles, the preprocessing record, config.json and the report). It is SimpleITK's index order of a
  canonical image, MONAI's order of the kit's NIfTI files, and so the order the network sees: a patch size
  goes from the profile to the network unchanged.
- numpy (`sitk.GetArrayFromImage`) holds an image's index axes reversed: a canonical array is ARRAY_AXES =
  (LR, SI, AP), a sagittal slice per [k], superior up, anterior left. Where an image becomes an array (or
  back) its values change order with `numpy_order` / `sitk_order`; where the network's tensor meets such an
  array (prediction, `array_to_network` / `network_to_array`). That boundary is the only place orders change.

Values are moved between the orders of differently stored images by anatomical name (`reorder`), never by
position.
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


AXES = axis_names(CANONICAL_ORIENTATION)  # (AP, SI, LR): the kit's order, SimpleITK's / MONAI's / the network's
ARRAY_AXES = numpy_order(AXES)  # (LR, SI, AP): numpy order of a canonical array


def reorder(values: Sequence, source: Sequence[str], target: Sequence[str]) -> tuple:
    """Per-axis values given along the anatomical axes `source`, returned along `target`."""
    if sorted(source) != sorted(target) or len(values) != len(source):
        raise ValueError(f"cannot reorder {len(values)} values from axes {tuple(source)} to {tuple(target)}")
    by_axis = dict(zip(source, values))
    return tuple(by_axis[name] for name in target)


def canonical_values(values: Sequence, orientation: str) -> tuple:
    """Per-index-axis values (size, spacing) of an image stored in `orientation` -> the kit's order (AP, SI, LR)."""
    return reorder(values, axis_names(orientation), AXES)


def stored_values(values: Sequence, orientation: str) -> tuple:
    """Values in the kit's order (AP, SI, LR) -> SimpleITK index order (i, j, k) of an image stored in `orientation`."""
    return reorder(values, AXES, axis_names(orientation))


def axis_index(name: str) -> int:
    """Index of an anatomical axis (LR, SI or AP) among the kit's (and the network's) spatial axes."""
    return AXES.index(name)


def by_axis(values: Mapping[str, float]) -> tuple:
    """Values named by anatomical axis ({LR: .., SI: .., AP: ..}) as a tuple in the kit's order."""
    return tuple(values[name] for name in AXES)


def array_to_network(array: np.ndarray) -> np.ndarray:
    """A canonical numpy array (LR, SI, AP) as the network holds the same voxels (AP, SI, LR); contiguous."""
    return np.ascontiguousarray(np.transpose(array, [ARRAY_AXES.index(a) for a in AXES]))


def network_to_array(array: np.ndarray) -> np.ndarray:
    """An array in the network's order (AP, SI, LR) back into canonical numpy order (LR, SI, AP); contiguous."""
    return np.ascontiguousarray(np.transpose(array, [AXES.index(a) for a in ARRAY_AXES]))


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
