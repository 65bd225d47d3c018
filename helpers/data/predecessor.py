"""The predecessor's recipe (the student project the kit grew from), in one place: what the kit compares itself
with (notebooks 03, 05 and 06, the bench). Its number, `predecessor_score`, is in helpers/evaluation/dice.py.

The predecessor (a student project, CIT-654; ../shared/spider-format.md) reoriented every series to RPS,
resampled it to a fixed 32x128x128 voxels (linear, no anti-aliasing: aspect ratio lost), mapped
intensities through a CT-style window [-1000, 3096] -> [0, 1], trained UNETR on 20 instance classes
(background, vertebrae 1-9, canal, discs 201-209) without augmentation, and reported one number,
0.7154: a mean Dice over those 20 classes with background included, on a validation split by series.
Nothing here is the kit's default; `resample`, `train`, `bench`, `evaluate` and `report` import it where
they reproduce or compare with the predecessor.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.data.axes import reorient, stored_values
from helpers.data.labels import CANAL_LABEL, DISC_LABELS, to_structures

PREDECESSOR_ORIENTATION = "RPS"  # the predecessor reoriented to this before resampling
PREDECESSOR_FIXED_SIZE = (128, 128, 32)  # its output size (AP, SI, LR): 32 sagittal slices of 128 x 128; UNETR img_size
CT_WINDOW = (-1000.0, 3096.0)  # its intensity window -> [0, 1], made for one of SPIDER's two conventions
PREDECESSOR_MAX_LEVEL = 9  # vertebrae and discs 1-9 are classes; higher levels become background
PREDECESSOR_REPORTED = 0.7154  # its best validation number (series split, 20 classes, background in)

# the predecessor's recipe as the kit's settings: resample.ResampleSettings(**PREDECESSOR_PREPROCESSING) and
# train.TrainConfig(**PREDECESSOR_TRAINING); whole volumes as patches
PREDECESSOR_PREPROCESSING = {"mode": "fixed_size", "size": PREDECESSOR_FIXED_SIZE, "labels": "instances",
                             "intensity": "ct_window"}
PREDECESSOR_TRAINING = {"patch_size": list(PREDECESSOR_FIXED_SIZE), "augment": False, "class_ratios": []}


def instance_classes(max_level: int = PREDECESSOR_MAX_LEVEL) -> list[int]:
    """SPIDER values of the predecessor's instance classes: background, vertebrae 1..n, canal, discs 201..200+n."""
    return [0, *range(1, max_level + 1), CANAL_LABEL, *range(201, 201 + max_level)]


def predecessor_class_structures(max_level: int = PREDECESSOR_MAX_LEVEL) -> np.ndarray:
    """Structure index of each of the predecessor's instance classes (0 bg, 1..n vertebrae, canal, discs)."""
    return to_structures(np.array(instance_classes(max_level))).astype(np.int64)


def predecessor_class_lut(max_level: int = PREDECESSOR_MAX_LEVEL) -> np.ndarray:
    """SPIDER value -> the predecessor's class index; values beyond the predecessor's levels become background (0)."""
    lut = np.zeros(max(DISC_LABELS) + 1, dtype=np.int64)
    for index, value in enumerate(instance_classes(max_level)):
        lut[value] = index
    return lut


def describe() -> str:
    """The predecessor's recipe in words, from the constants above (for tables and reports)."""
    lo, hi = CT_WINDOW
    return (f"fixed {'x'.join(map(str, PREDECESSOR_FIXED_SIZE))} (AP x SI x LR), CT window [{lo:g}, {hi:g}], "
            f"{len(instance_classes())} instance classes, no augmentation")


def ct_window(values: np.ndarray) -> np.ndarray:
    """The predecessor's intensity mapping: CT_WINDOW -> [0, 1], clipped (float32)."""
    lo, hi = CT_WINDOW
    return np.clip((np.asarray(values, np.float32) - lo) / (hi - lo), 0, 1).astype(np.float32)


def predecessor_preprocess(data_dir: Path, out: Path) -> int:
    """The predecessor's preprocessing, for the bench's speed baseline: one process, reorient to
    PREDECESSOR_ORIENTATION, resample to PREDECESSOR_FIXED_SIZE (linear, no anti-aliasing), CT window to [0, 1],
    nearest-neighbour masks."""
    from helpers.data.spider import read_series, scan_dataset

    out.mkdir(parents=True, exist_ok=True)
    # (LR, AP, SI) for RPS: (32, 128, 128)
    size = [int(v) for v in stored_values(PREDECESSOR_FIXED_SIZE, PREDECESSOR_ORIENTATION)]
    lo, hi = CT_WINDOW
    count = 0
    for s in scan_dataset(data_dir).complete:
        image, mask = read_series(s)
        image, mask = reorient(image, PREDECESSOR_ORIENTATION), reorient(mask, PREDECESSOR_ORIENTATION)
        spacing = [sz * sp / n for sz, sp, n in zip(image.GetSize(), image.GetSpacing(), size)]
        img = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, image.GetOrigin(), spacing,
                            image.GetDirection(), 0.0, sitk.sitkFloat32)
        img = sitk.Clamp((img - lo) / (hi - lo), sitk.sitkFloat32, 0.0, 1.0)
        lab = sitk.Resample(mask, size, sitk.Transform(), sitk.sitkNearestNeighbor, image.GetOrigin(), spacing,
                            image.GetDirection(), 0, mask.GetPixelID())
        sitk.WriteImage(img, str(out / f"{s.stem}_image.nii.gz"))
        sitk.WriteImage(lab, str(out / f"{s.stem}_label.nii.gz"))
        count += 1
    return count
