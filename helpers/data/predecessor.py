"""The predecessor's recipe (the "seed" project the kit grew from), in one place: what the kit compares itself
with (notebooks 03, 05 and 06, the bench). Its number, `seed_style_score`, is in helpers/evaluation/dice.py.

The seed (a student project, CIT-654; ../shared/spider-format.md) reoriented every series to RPS,
resampled it to a fixed 32x128x128 voxels (linear, no anti-aliasing: aspect ratio lost), mapped
intensities through a CT-style window [-1000, 3096] -> [0, 1], trained UNETR on 20 instance classes
(background, vertebrae 1-9, canal, discs 201-209) without augmentation, and reported one number,
0.7154: a mean Dice over those 20 classes with background included, on a validation split by series.
Nothing here is the kit's default; `resample`, `train`, `bench`, `evaluate` and `report` import it where
they reproduce or compare with the seed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.data.axes import reorient, stored_values
from helpers.data.labels import CANAL_LABEL, DISC_LABELS, to_structures

SEED_ORIENTATION = "RPS"  # the seed reoriented to this before resampling
SEED_FIXED_SIZE = (128, 128, 32)  # its output size (AP, SI, LR): 32 sagittal slices of 128 x 128; its UNETR's img_size
CT_WINDOW = (-1000.0, 3096.0)  # its intensity window -> [0, 1], made for one of SPIDER's two conventions
SEED_MAX_LEVEL = 9  # vertebrae and discs 1-9 are classes; higher levels become background
SEED_REPORTED = 0.7154  # its best validation number (series split, 20 classes, background in)

# the seed's recipe as the kit's settings: resample.ResampleSettings(**SEED_PREPROCESSING) and train.TrainConfig
SEED_PREPROCESSING = {"mode": "fixed_size", "size": SEED_FIXED_SIZE, "labels": "instances", "intensity": "ct_window"}
SEED_TRAINING = {"patch_size": list(SEED_FIXED_SIZE), "augment": False, "class_ratios": []}  # whole volumes


def instance_classes(max_level: int = SEED_MAX_LEVEL) -> list[int]:
    """SPIDER values of the seed's instance classes: background, vertebrae 1..n, canal, discs 201..200+n."""
    return [0, *range(1, max_level + 1), CANAL_LABEL, *range(201, 201 + max_level)]


def seed_class_structures(max_level: int = SEED_MAX_LEVEL) -> np.ndarray:
    """Structure index of each of the seed's instance classes (0 bg, 1..n vertebrae, canal, discs)."""
    return to_structures(np.array(instance_classes(max_level))).astype(np.int64)


def seed_class_lut(max_level: int = SEED_MAX_LEVEL) -> np.ndarray:
    """SPIDER value -> seed class index; values beyond the seed's levels become background (0)."""
    lut = np.zeros(max(DISC_LABELS) + 1, dtype=np.int64)
    for index, value in enumerate(instance_classes(max_level)):
        lut[value] = index
    return lut


def describe() -> str:
    """The seed's recipe in words, from the constants above (for tables and reports)."""
    lo, hi = CT_WINDOW
    return (f"fixed {'x'.join(map(str, SEED_FIXED_SIZE))} (AP x SI x LR), CT window [{lo:g}, {hi:g}], "
            f"{len(instance_classes())} instance classes, no augmentation")


def ct_window(values: np.ndarray) -> np.ndarray:
    """The seed's intensity mapping: CT_WINDOW -> [0, 1], clipped (float32)."""
    lo, hi = CT_WINDOW
    return np.clip((np.asarray(values, np.float32) - lo) / (hi - lo), 0, 1).astype(np.float32)


def seed_style_preprocess(data_dir: Path, out: Path) -> int:
    """The seed's preprocessing, for the bench's speed baseline: one process, reorient to SEED_ORIENTATION,
    resample to SEED_FIXED_SIZE (linear, no anti-aliasing), CT window to [0, 1], nearest-neighbour masks."""
    from helpers.data.spider import read_series, scan_dataset

    out.mkdir(parents=True, exist_ok=True)
    size = [int(v) for v in stored_values(SEED_FIXED_SIZE, SEED_ORIENTATION)]  # (LR, AP, SI) for RPS: (32, 128, 128)
    lo, hi = CT_WINDOW
    count = 0
    for s in scan_dataset(data_dir).complete:
        image, mask = read_series(s)
        image, mask = reorient(image, SEED_ORIENTATION), reorient(mask, SEED_ORIENTATION)
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
