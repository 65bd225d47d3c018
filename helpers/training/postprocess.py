"""Post-processing of a predicted structure map, and the choice of it per structure on the validation data.

`cleanup` keeps the canal's largest connected component and the vertebra and disc components of at least a
tenth of their largest one: stray specks far from the spine go, the spine stays. Whether it helps depends on
the model and the data, so each run decides per structure, the way nnU-Net does: validation scores every
structure with and without it, and the kit's predictions (`evaluate`, `predict`) use it only for the structures
where it raised the validation Dice of the chosen checkpoint. The test data never takes part in the choice.

Used by notebook 05 (validation) and notebook 06 (through helpers.evaluation.evaluate).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from scipy import ndimage

from helpers.data.labels import BACKGROUND, CANAL, DISC, FOREGROUND, STRUCTURES, VERTEBRA

MIN_FRACTION = 0.1  # vertebra and disc components smaller than this share of the largest one are dropped


def cleanup(structures: np.ndarray, which: Iterable[int] = (VERTEBRA, DISC, CANAL),
            min_fraction: float = MIN_FRACTION) -> np.ndarray:
    """A copy of a structure map (0-3) with the largest canal component kept, and vertebra and disc components
    of at least `min_fraction` of their largest; only the structures in `which` are touched."""
    out = structures.copy()
    for value in which:
        found = ndimage.find_objects((structures == value).view(np.uint8))
        if not found:
            continue
        box = found[0]  # the structure's bounding box: labelling and lookups touch only it
        comps, n = ndimage.label(structures[box] == value)
        if n <= 1:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        drop = np.zeros(n + 1, bool)  # component index -> removed; one lookup instead of a search per component
        if value == CANAL:
            drop[1:] = True
            drop[np.argmax(sizes) + 1] = False
        else:
            drop[1:] = sizes < min_fraction * sizes.max()
        out[box][drop[comps]] = BACKGROUND
    return out


def chosen_cleanup(validation: dict) -> list[int]:
    """The structures whose validation Dice rose with `cleanup`, from a validation entry of metrics.jsonl
    (`dice_<name>` and `clean_dice_<name>`); none when the entry predates the choice."""
    return [STRUCTURES.index(name) for name in FOREGROUND
            if validation.get(f"clean_dice_{name}", -1.0) > validation.get(f"dice_{name}", np.inf)]
