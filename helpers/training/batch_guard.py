"""The last gate before the network: a batch with non-finite input or unknown labels stops training, named.

So bad data (a training file changed after resampling, a hand-made datalist) is told apart from a true
divergence of the network: the loss check in the loop only ever sees batches that passed here.

Used by notebook 05 (through helpers.training.loop).
"""

from __future__ import annotations

from pathlib import Path

import torch

from helpers.core.errors import DataError


def batch_sources(batch: dict, key: str) -> list[str]:
    """File of each sample of a collated MONAI batch (from its meta data), or 'sample i' when unknown."""
    value = batch[key]
    meta = getattr(value, "meta", None) or batch.get(f"{key}_meta_dict") or {}
    names = meta.get("filename_or_obj")
    if isinstance(names, (str, Path)):
        names = [names]
    n = len(value)
    return [str(v) for v in names] if names is not None and len(names) == n else [f"sample {i}" for i in range(n)]


def plain(x) -> torch.Tensor:
    """A plain torch.Tensor of `x` (a view, no copy): a MONAI MetaTensor carries its metadata through every operation
    in Python (13-17 % of a float32 smoke step on a CPU, docs/recipe.md), which the network and the loss do not need."""
    return x.as_tensor() if hasattr(x, "as_tensor") else torch.as_tensor(x)


def check_batch(batch: dict, num_classes: int, where: str = "a training batch") -> None:
    """DataError naming every bad series when the input holds NaN/inf or a label lies outside 0..num_classes-1."""
    image, label = plain(batch["image"]), plain(batch["label"])
    n = image.shape[0]
    bad_image = ~torch.isfinite(image.reshape(n, -1)).all(1)
    flat = label.reshape(n, -1)
    bad_label = (flat.amin(1) < 0) | (flat.amax(1) > num_classes - 1)
    if flat.is_floating_point():
        bad_label |= ~torch.isfinite(flat).all(1) | (flat != torch.round(flat)).any(1)
    if not (bad_image.any() or bad_label.any()):
        return
    problems = []
    images, labels = batch_sources(batch, "image"), batch_sources(batch, "label")
    for i in range(n):
        if bad_image[i]:
            problems.append((images[i], "holds NaN or infinite voxels"))
        if bad_label[i]:
            values = sorted({float(v) for v in torch.unique(flat[i]).tolist()
                             if not (0 <= v <= num_classes - 1 and float(v).is_integer())})
            shown = ", ".join(f"{v:g}" for v in values[:8])
            problems.append((labels[i], f"holds label values {shown} outside the {num_classes} classes "
                                        f"0..{num_classes - 1}"))
    problems = list(dict.fromkeys(problems))  # a volume gives several patches
    path, reason = problems[0]
    also = "".join(f"; also {p}: {r}" for p, r in problems[1:])
    raise DataError(path, f"{reason}{also}. Found in {where} before the step: bad data, not a divergence. "
                          "Resample again (bad values are skipped there: docs/bad-values.md) and rewrite "
                          "the datalist, or remove the series from it")
