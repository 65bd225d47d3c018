"""The plain method, to check the fast engine against or to fall back on: one exact Euclidean distance transform
of the target's border over the whole image (scipy), read at the source points.

It gives the same distances as `surface.distances_to` (the tests compare them) at the cost of a whole-image
transform per target label: a few seconds more per series, minutes more per evaluation. Selected with
`SPIDER_KIT_DISTANCES=plain` (see helpers/evaluation/distances/__init__.py); notebook 06 then scores with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage


def distances_to(sources: list[np.ndarray], target, label: int, sampling: Sequence[float]) -> list[np.ndarray]:
    """Distance (mm) from each point (array index) of every set in `sources` to the nearest border voxel of
    `label` in `target` (a `surface.BorderSet`); inf when `label` has no border."""
    goal = target.points.get(label)
    if goal is None or not len(goal):
        return [np.full(len(points), np.inf) for points in sources]
    shape = tuple(n - 2 * target.PAD for n in target.grid.shape)
    background = np.ones(shape, bool)
    background[tuple(goal.T)] = False
    distance = ndimage.distance_transform_edt(background, sampling=tuple(float(s) for s in sampling))
    return [distance[tuple(np.asarray(points).T)].astype(np.float64) if len(points) else np.zeros(0)
            for points in sources]
