"""Borders and surface distances of label maps, fast: every label's border in one pass, distances by KD-tree.

A border voxel is a voxel of a label with at least one neighbour (6 for connectivity 1, 26 for full
connectivity 3) that is not that label, or that lies outside the image: exactly `mask ^ binary_erosion(mask,
generate_binary_structure(3, connectivity))` with scipy's default border value, for every label at once.
Distances from border voxels to the nearest border voxel of another object are exact Euclidean distances in
mm, the numbers a distance transform of the whole image gives, computed in two steps: first a search of
the voxels around each point in order of distance (most border points of a fair prediction lie within a few
voxels of the other border), then, for the points left, the cheaper of a KD-tree over the target's border
points (few points) or an exact distance map (Maurer's algorithm, SimpleITK) cropped to the bounding box of
both sets (many points far away: a scattered or bloated prediction, where a KD-tree slows down).

Used by notebook 06 (through helpers.evaluate).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import SimpleITK as sitk
from scipy.spatial import cKDTree

from .axes import sitk_order

WORKERS = -1  # KD-tree queries on every core
MAP_SHARE = 1 / 40  # a distance map pays off once the points to measure exceed this share of its voxels
NEAR_VOXELS = 2  # the first step searches up to this many voxels along the coarsest axis


def _bounding_box(nonzero: np.ndarray) -> tuple[slice, ...] | None:
    box = []
    for axis in range(nonzero.ndim):
        hit = np.flatnonzero(nonzero.any(axis=tuple(a for a in range(nonzero.ndim) if a != axis)))
        if not hit.size:
            return None
        box.append(slice(int(hit[0]), int(hit[-1]) + 1))
    return tuple(box)


def _extreme3(a: np.ndarray, axis: int, fn) -> np.ndarray:
    """fn over each run of 3 neighbours along `axis`; the result is 2 shorter along that axis."""
    n = a.shape[axis]
    take = [slice(None)] * a.ndim

    def part(start):
        take[axis] = slice(start, n - 2 + start)
        return a[tuple(take)]

    return fn(fn(part(0), part(1)), part(2))


def border_mask(labels: np.ndarray, connectivity: int = 3) -> np.ndarray:
    """Boolean map of the border voxels of every nonzero label (connectivity 1: faces; 3: full, 26 neighbours).
    Label values must fit in int16."""
    if connectivity not in (1, 3):
        raise ValueError("connectivity must be 1 (faces) or 3 (full)")
    padded = np.pad(labels.astype(np.int16, copy=False), 1, constant_values=-1)  # outside the image: no label
    centre = padded[(slice(1, -1),) * labels.ndim]
    if connectivity == 3:  # min and max over the 3x3x3 cube are separable: 2 x 3 passes instead of 26 shifts
        low = high = padded
        for axis in range(labels.ndim):
            low, high = _extreme3(low, axis, np.minimum), _extreme3(high, axis, np.maximum)
        differs = (low != centre) | (high != centre)
    else:
        differs = np.zeros(labels.shape, bool)
        for axis in range(labels.ndim):
            for start in (0, 2):
                take = [slice(1, -1)] * labels.ndim
                take[axis] = slice(start, start + labels.shape[axis])
                differs |= padded[tuple(take)] != centre
    return differs & (centre != 0)


def label_borders(labels: np.ndarray, connectivity: int = 3) -> dict[int, np.ndarray]:
    """Border voxel coordinates (array order, int) of every nonzero label, computed once for all labels."""
    box = _bounding_box(labels != 0)
    if box is None:
        return {}
    crop = labels[box]
    border = border_mask(crop, connectivity)
    coords = np.argwhere(border) + np.array([s.start for s in box])
    values = crop[border]
    order = np.argsort(values, kind="stable")
    values, coords = values[order], coords[order]
    cuts = np.flatnonzero(np.diff(values)) + 1
    return {int(group[0]): pts for group, pts in zip(np.split(values, cuts), np.split(coords, cuts))}


class BorderSet:
    """Border points of every label of one map, with one KD-tree per label and spacing, built on demand."""

    def __init__(self, labels: np.ndarray, connectivity: int = 3):
        self.points = label_borders(labels, connectivity)
        self.box = {label: (pts.min(0), pts.max(0)) for label, pts in self.points.items()}  # first, last voxel
        self._trees: dict[tuple, cKDTree] = {}

    def scaled(self, label: int, sampling: Sequence[float]) -> np.ndarray:
        """Border points of `label` in mm for the given spacing per array axis."""
        return self.points[label] * np.asarray(sampling, dtype=np.float64)

    def tree(self, label: int, sampling: Sequence[float]) -> cKDTree:
        key = (label, tuple(float(s) for s in sampling))
        if key not in self._trees:
            self._trees[key] = cKDTree(self.scaled(label, sampling), leafsize=32)
        return self._trees[key]


def distance_map(points: np.ndarray, low: np.ndarray, shape: Sequence[int], sampling: Sequence[float]) -> np.ndarray:
    """Exact distance (mm) from every voxel of the box starting at `low` with `shape` to the nearest of `points`."""
    mask = np.zeros(tuple(int(n) for n in shape), np.uint8)
    mask[tuple((points - low).T)] = 1
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing(tuple(float(s) for s in sitk_order(sampling)))
    signed = sitk.SignedMaurerDistanceMap(image, insideIsPositive=False, squaredDistance=False, useImageSpacing=True)
    return np.maximum(sitk.GetArrayViewFromImage(signed), 0)  # the points themselves (inside) are at 0


def _near_offsets(sampling: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (voxels) within radius R, nearest first, their distances (mm) and the half-widths of their box.

    R is NEAR_VOXELS x the coarsest spacing, but no more than NEAR_VOXELS + 1 voxels along any axis, so every
    offset outside the box lies at R or farther: a hit among them is the nearest voxel."""
    spacing = np.asarray(sampling, dtype=np.float64)
    half = np.minimum(np.floor(NEAR_VOXELS * spacing.max() / spacing), NEAR_VOXELS + 1).astype(int)
    radius = min(NEAR_VOXELS * spacing.max(), float(((half + 1) * spacing).min()))
    grid = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), -1).reshape(-1, len(half))
    dist = np.sqrt(((grid * spacing) ** 2).sum(1))
    near = dist <= radius
    keep = np.argsort(dist[near], kind="stable")
    return grid[near][keep], dist[near][keep], half


def directed_distances(source: BorderSet, source_label: int, target: BorderSet, target_label: int,
                       sampling: Sequence[float]) -> np.ndarray:
    """Distance (mm) from each border voxel of `source_label` to the nearest border voxel of `target_label`."""
    points, goal = source.points[source_label], target.points[target_label]
    offsets, dist, half = _near_offsets(sampling)
    (goal_low, goal_high), (source_low, source_high) = target.box[target_label], source.box[source_label]
    low = goal_low - half
    shape = goal_high + half - low + 1
    mask = np.zeros(shape, bool)
    mask[tuple((goal - low).T)] = True
    out = np.full(len(points), np.inf)
    inside = np.all((points >= low + half) & (points < low + shape - half), axis=1)  # the others are farther
    todo = np.flatnonzero(inside)
    flat = np.ravel_multi_index(tuple((points[todo] - low).T), shape)
    steps = np.ravel_multi_index(tuple((offsets + half).T), shape) - np.ravel_multi_index(tuple(half), shape)
    found = mask.ravel()
    for step, d in zip(steps, dist):  # nearest offsets first: the first hit is the nearest border voxel
        if not todo.size:
            break
        hit = found[flat + step]
        out[todo[hit]] = d
        todo, flat = todo[~hit], flat[~hit]
    rest = np.flatnonzero(np.isinf(out))
    if rest.size:
        far = points[rest]
        low = np.minimum(source_low, goal_low)  # the source's box holds the far points: no search over them
        shape = np.maximum(source_high, goal_high) - low + 1
        if len(far) > MAP_SHARE * float(np.prod(shape)):
            out[rest] = distance_map(goal, low, shape, sampling)[tuple((far - low).T)]
        else:
            out[rest] = target.tree(target_label, sampling).query(far * np.asarray(sampling), workers=WORKERS)[0]
    return out


def symmetric_distances(a: BorderSet, a_label: int, b: BorderSet, b_label: int,
                        sampling: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(b's border to a's, a's border to b's) distances in mm; both labels must have a border."""
    return (directed_distances(b, b_label, a, a_label, sampling), directed_distances(a, a_label, b, b_label, sampling))
