"""What training reads: the transform chain (loading, the predecessor's classes, patch sampling, augmentation), the
classes a run's labels hold, and the cached dataset.

Used by notebook 05: the chain it prints, and (through helpers.training.loop) the patches it shows and trains on.
"""

from __future__ import annotations

import numpy as np
import torch

from helpers.data.axes import AP, LR, SI, axis_index, by_axis
from helpers.data.datalist import KEYS
from helpers.data.labels import STRUCTURES
from helpers.data.predecessor import predecessor_class_lut, predecessor_class_structures
from helpers.data.resample import ResampleSettings

CLASS_INDICES = "label_class_indices"  # where each class lies, computed once and cached with the volume


def instance_labels(preprocessing: dict) -> bool:
    """Whether the labels are the predecessor's 20 instance classes (a preprocessing record with labels="instances")."""
    return ResampleSettings.from_record(preprocessing).labels == "instances"


def class_structures(config: dict) -> np.ndarray:
    """Structure index of each output class: identity for structures, the predecessor's 20 classes for instances."""
    if instance_labels(config.get("preprocessing", {})):
        return predecessor_class_structures()
    return np.arange(len(STRUCTURES))


class _PredecessorClasses:
    """SPIDER values -> the predecessor's class indices (a picklable transform for data-loader workers)."""

    def __init__(self):
        self.lut = torch.as_tensor(predecessor_class_lut())

    def __call__(self, label):
        return self.lut[torch.as_tensor(label).long()].to(torch.uint8)


def transforms(patch: tuple[int, ...], samples: int, train: bool, instances: bool = False, augment: bool = True,
               class_ratios: list[float] | None = None):
    """Deterministic loading (cached), then random patches and spine-MR augmentation for training.

    `patch` is in the kit's order (AP, SI, LR), the network's. `class_ratios` (background, vertebra, disc,
    canal) draws patch centres per class (MONAI's RandCropByLabelClassesd); empty or None: half on any structure,
    half anywhere (RandCropByPosNegLabeld, as the predecessor's recipe).
    """
    from monai import transforms as T

    balanced = bool(class_ratios) and not instances
    det = _loading(patch, instances)
    if not train:
        return T.Compose(det)
    if balanced:
        det.append(T.ClassesToIndicesd("label", num_classes=len(class_ratios), indices_postfix="_class_indices"))
    rand = [_patch_sampler(patch, samples, class_ratios if balanced else None)]
    if augment:
        rand += _augmentation()
    tail = [T.DeleteItemsd(CLASS_INDICES)] if balanced else []  # not needed past the crop
    return T.Compose(det + rand + tail)


def _loading(patch: tuple[int, ...], instances: bool) -> list:
    """Read image and label, channel first, labels as the run's classes, padded to at least one patch."""
    from monai import transforms as T

    det = [_nibabel_loader(), T.EnsureChannelFirstd(KEYS),
           T.EnsureTyped("image", dtype=torch.float32)]
    if instances:  # SPIDER values -> the predecessor's 20 classes; vertebrae and discs above level 9 become background
        det.append(T.Lambdad("label", _PredecessorClasses()))
    return det + [T.EnsureTyped("label", dtype=torch.uint8), T.SpatialPadd(KEYS, spatial_size=patch)]


def _nibabel_loader():
    """MONAI's LoadImaged with the NIfTI reader. MONAI also builds every other reader it knows, and with pydicom
    installed (for DICOM SEG) its GPU DICOM decoder warns on every machine without one: not ours to fix, and the
    kit reads only NIfTI here, so it is not shown."""
    import logging
    import warnings

    from monai import transforms as T

    logging.getLogger("monai.data.nvimgcodec_pydicom_plugin").setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="NvImgCodecPydicomReader")
        return T.LoadImaged(KEYS, reader="NibabelReader")


def _patch_sampler(patch: tuple[int, ...], samples: int, class_ratios: list[float] | None):
    """`samples` patches per volume: centres drawn per class, or half on a structure and half anywhere."""
    from monai import transforms as T

    if class_ratios:
        return T.RandCropByLabelClassesd(KEYS, "label", spatial_size=patch, ratios=list(class_ratios),
                                         num_classes=len(class_ratios), num_samples=samples,
                                         indices_key=CLASS_INDICES, warn=False)
    return T.RandCropByPosNegLabeld(KEYS, "label", spatial_size=patch, pos=1, neg=1, num_samples=samples)


def _augmentation() -> list:
    """Spine-MR augmentation: a left-right flip, small mostly sagittal rotations and scaling, intensity jitter."""
    from monai import transforms as T

    lr_axis = axis_index(LR)  # flip left-right only; anterior/posterior and up/down are not symmetric
    rotate_range = by_axis({LR: 0.2, SI: 0.05, AP: 0.05})  # radians about each axis: mostly sagittal
    return [T.RandFlipd(KEYS, prob=0.5, spatial_axis=lr_axis),
            T.RandAffined(KEYS, prob=0.3, rotate_range=rotate_range, scale_range=(0.1, 0.1, 0.1),
                          mode=("bilinear", "nearest"), padding_mode="zeros"),
            T.RandScaleIntensityd("image", factors=0.1, prob=0.5),
            T.RandShiftIntensityd("image", offsets=0.1, prob=0.5),
            T.RandAdjustContrastd("image", prob=0.3, gamma=(0.7, 1.5))]


def cached_dataset(items: list[dict], transform, num_workers: int, cache_rate: float = 1.0):
    """The deterministic part of `transform` computed once and kept in RAM for the first `cache_rate` share of
    `items` (helpers.training.resources sizes it from the free memory); the others are loaded at each use."""
    from monai.data import CacheDataset, Dataset

    if cache_rate <= 0:
        return Dataset(items, transform)
    return CacheDataset(items, transform, cache_rate=cache_rate, num_workers=max(1, num_workers), progress=False)
