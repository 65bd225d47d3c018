"""Borders and surface distances of label maps, fast: every label's border in one pass, distances by local search,
cropped distance maps, bands of 2D maps or KD-trees.

A border voxel is a voxel of a label with at least one neighbour (6 for connectivity 1, 26 for full
connectivity 3) that is not that label, or that lies outside the image: exactly `mask ^ binary_erosion(mask,
generate_binary_structure(3, connectivity))` with scipy's default border value, for every label at once.
Distances from border voxels to the nearest border voxel of another object are exact Euclidean distances in
mm, the numbers a distance transform of the whole image gives, computed in two steps:

1. a search of the voxels around each point in order of distance: most border points of a fair prediction
   lie within a few voxels of the other border. It gives up after the first voxel around when most points
   are still unresolved (a scattered or bloated prediction), so it never costs more than a few passes, and
   is skipped when most points lie beyond its reach anyway;
2. the points left: only the target voxels that can be the nearest to one of them are kept (those within
   an upper bound of their distance, per block of points where the target reaches beyond them, when that can
   save more than the search costs), then the cheapest of
   - an exact distance map (Maurer's algorithm, SimpleITK; about 16 ns a voxel) over the bounding box of both sets;
   - a band of rows (`band_distances`): the 2D maps of the target's own rows along the axis where it is thinnest,
     then one lookup per point in the lower envelope along that axis (`envelope.py`, numba; about 19 ns a
     voxel of the band and 13 ns a point). A vertebra against a label that paints the whole image: 0.03 instead
     of 0.16 s CPU;
   - a KD-tree over those target voxels (about 1 microsecond a far point).

Independent distance jobs (`Work`, `JobPool`, `run_work`) run side by side on every core; the compiled kernels
release the GIL.

Used by notebook 06 (through helpers.evaluation.evaluate).
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import SimpleITK as sitk
from scipy.spatial import cKDTree

from helpers.data.axes import sitk_order

WORKERS = -1  # KD-tree queries on every core
NEAR_VOXELS = 2  # the local search looks up to this many voxels along the coarsest axis
NEAR_GIVE_UP = 0.5  # ... and stops after the first voxel around when more than this share is still unresolved
# what the far points cost, measured on 2 cores (ns): a distance map per voxel of its box, a KD-tree per point
# it holds (built once per label and spacing) and per far point it answers
MAP_NS, TREE_BUILD_NS, TREE_QUERY_NS = 16, 80, 2400
# ... and the band of rows (`band_distances`) per voxel of its 2D maps and per point it answers
BAND_VOXEL_NS, BAND_POINT_NS = 19, 13
REACH_NS = 30  # what finding the target's crop (`_reach`) costs per point, measured the same way
REACH_BLOCK = 8  # voxels a side: the blocks of far points whose distance bounds crop the target
FAR_METHOD: str | None = None  # "map", "band" or "tree" forces one (tests); None: whichever costs less
THREADS = os.cpu_count() or 1  # independent distance jobs run side by side on this many threads
_thread = threading.local()  # map_threads: SimpleITK threads per distance map (1 inside a pool of jobs)


@dataclass
class Work:
    """Independent distance jobs (callables without arguments) and what makes the answer of their results."""

    jobs: list[Callable[[], Any]]
    finish: Callable[[list], Any]


class JobPool:
    """Independent jobs side by side on THREADS threads (SimpleITK's distance maps, KD-tree queries and most of
    numpy release the GIL), each distance map then on one thread, so that no map waits on a busy core for its
    other half; in turn, as they are submitted, when there is one thread. A context manager: the caller goes on
    with its own work (numbering, borders) while the jobs run, and reads their results when it needs them.
    Jobs must not share a cache entry (a target label and spacing), so that every choice of method is the same
    in any order."""

    def __init__(self, threads: int | None = None):
        self.threads = THREADS if threads is None else threads
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> JobPool:
        if self.threads > 1:
            self._pool = ThreadPoolExecutor(self.threads, initializer=_one_thread_maps)
        return self

    def __exit__(self, *exc) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=exc[0] is not None)

    def submit(self, job: Callable[[], Any]) -> Callable[[], Any]:
        """Start a job; returns what gives its result (waiting for it)."""
        if self._pool is None:
            result = job()
            return lambda: result
        return self._pool.submit(job).result

    def work(self, work: Work) -> Callable[[], Any]:
        """Start every job of a `Work`; returns what gives its answer (waiting for them)."""
        results = [self.submit(job) for job in work.jobs]
        return lambda: work.finish([result() for result in results])


def _one_thread_maps() -> None:
    _thread.map_threads = 1


def run_work(*works: Work) -> list:
    """Every job of every `Work` in one pool (`JobPool`), then each one's answer, in order."""
    jobs = sum(len(work.jobs) for work in works)
    with JobPool(THREADS if jobs > 1 else 1) as pool:
        answers = [pool.work(work) for work in works]
        return [answer() for answer in answers]


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


def _coordinates(mask: np.ndarray) -> np.ndarray:
    """`np.argwhere(mask)`, the same array, from flat indices (a third less time on big masks)."""
    flat = np.flatnonzero(mask)
    out = np.empty((len(flat), mask.ndim), np.int64)
    for axis, column in enumerate(np.unravel_index(flat, mask.shape)):
        out[:, axis] = column
    return out


def _extent(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """First and last voxel of a point set, one axis at a time (faster than min(0) on an (n, 3) array)."""
    return (np.array([points[:, a].min() for a in range(points.shape[1])]),
            np.array([points[:, a].max() for a in range(points.shape[1])]))


def _in_box(points: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Which points lie in the box [low, high] (inclusive), one axis at a time."""
    keep = np.ones(len(points), bool)
    for axis in range(points.shape[1]):
        column = points[:, axis]
        keep &= (column >= low[axis]) & (column <= high[axis])
    return keep


class BorderSet:
    """The border voxels of every label of one map, computed once: as points per label (array order), and as
    an image of border labels padded by PAD voxels (0 elsewhere), where a local search or a crop reads them.
    KD-trees per label and spacing are built on demand."""

    PAD = 4  # room around the image for the local search's offsets

    def __init__(self, labels: np.ndarray, connectivity: int = 3):
        self.connectivity = connectivity
        self.grid = np.zeros(tuple(n + 2 * self.PAD for n in labels.shape), np.int16)
        self.strides = np.array([int(np.prod(self.grid.shape[a + 1:])) for a in range(labels.ndim)])
        self.points, self.box, self.kept = {}, {}, {}
        self._trees: dict[tuple, cKDTree] = {}
        box = _bounding_box(labels != 0)
        if box is not None:
            crop = labels[box]
            border = border_mask(crop, connectivity)
            inner = tuple(slice(s.start + self.PAD, s.stop + self.PAD) for s in box)
            self.grid[inner][border] = crop[border]
            coords = _coordinates(border) + np.array([s.start for s in box])
            values = crop[border]
            order = np.argsort(values, kind="stable")
            values, coords = values[order], coords[order]
            cuts = np.flatnonzero(np.diff(values)) + 1
            for group, pts in zip(np.split(values, cuts), np.split(coords, cuts)):
                self.points[int(group[0])] = pts
                self.box[int(group[0])] = _extent(pts)  # first, last voxel

    def cleaned(self, labels: np.ndarray) -> BorderSet:
        """The border set of `labels`: this set's map with whole components (face-connected, as
        `postprocess.cleanup` removes them) set to 0, without a new pass. A kept voxel's face neighbours keep
        their labels (one of its own label would belong to its component), so its border status is unchanged, and
        the removed voxels are no border of anything: the result is exactly `BorderSet(labels, 1)`. `kept[label]`
        says which of this set's points remain (connectivity 1 only)."""
        if self.connectivity != 1:
            raise ValueError("only a face-connected border set stays exact when components are removed")
        out = copy.copy(self)
        out.grid, out.points, out.box, out.kept, out._trees = self.grid, {}, {}, {}, {}
        for label, pts in self.points.items():
            keep = labels[tuple(pts.T)] == label
            out.kept[label] = keep
            if keep.all():
                out.points[label], out.box[label] = pts, self.box[label]
                continue
            if out.grid is self.grid:
                out.grid = self.grid.copy()
            out.grid[tuple((pts[~keep] + self.PAD).T)] = 0
            if keep.any():
                out.points[label] = pts[keep]
                out.box[label] = _extent(out.points[label])
        return out

    def flat(self, points: np.ndarray) -> np.ndarray:
        """Index of each point in the padded grid, flattened."""
        return (points + self.PAD) @ self.strides

    def points_in(self, label: int, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        """Border points of `label` in the box [low, high], read from the grid or filtered, whichever is less work."""
        pts = self.points[label]
        if float(np.prod(high - low + 1)) > 8 * len(pts):
            return pts[_in_box(pts, low, high)]
        window = tuple(slice(a + self.PAD, b + self.PAD + 1) for a, b in zip(low, high))
        return np.argwhere(self.grid[window] == label) + low

    def scaled(self, label: int, sampling: Sequence[float]) -> np.ndarray:
        """Border points of `label` in mm for the given spacing per array axis."""
        return self.points[label] * np.asarray(sampling, dtype=np.float64)

    def has_tree(self, label: int, sampling: Sequence[float]) -> bool:
        return (label, tuple(float(s) for s in sampling)) in self._trees

    def tree(self, label: int, sampling: Sequence[float]) -> cKDTree:
        key = (label, tuple(float(s) for s in sampling))
        if key not in self._trees:
            self._trees[key] = _tree(self.scaled(label, sampling))
        return self._trees[key]


def _tree(points_mm: np.ndarray) -> cKDTree:
    """A KD-tree for far queries to a surface: unbalanced, uncompacted, 64 points a leaf (2-3 times faster to
    build and to query than scipy's defaults on border voxels; the distances are the same)."""
    return cKDTree(points_mm, leafsize=64, balanced_tree=False, compact_nodes=False)


def map_layout(shape: Sequence[int]) -> tuple[int, ...]:
    """The axis order in which SimpleITK's Maurer map of a box of this shape is fastest: its shortest axis in the
    middle (numpy's axis 1, ITK's y), the others in their order. Measured on 2 cores for real-sized series
    (e.g. 27 x 640 x 512: 0.16 instead of 0.22 s CPU a map); the distances are the same."""
    shortest = int(np.argmin(shape))
    others = [a for a in range(len(shape)) if a != shortest]
    return (others[0], shortest, *others[1:]) if len(shape) == 3 else tuple(range(len(shape)))


def _squared_map(goal: np.ndarray, low: np.ndarray, shape: Sequence[int], sampling: Sequence[float]
                 ) -> tuple[np.ndarray, list[int], sitk.Image]:
    """Squared distance map (mm^2) of `goal` over the box starting at `low` with `shape` (SimpleITK's Maurer filter,
    in the map's fastest layout; negative at the goal itself): its values laid out as `map_layout` orders the axes,
    that order, and the image that holds the memory the values read (keep it while reading them)."""
    order = list(map_layout(shape))
    mask = np.zeros(tuple(int(shape[a]) for a in order), np.uint8)
    mask[tuple((goal - low)[:, order].T)] = 1
    image = sitk.GetImageFromArray(mask)
    image.SetSpacing(tuple(float(s) for s in sitk_order([sampling[a] for a in order])))
    maurer = sitk.SignedMaurerDistanceMapImageFilter()
    maurer.SetInsideIsPositive(False)
    maurer.SetSquaredDistance(True)
    maurer.SetUseImageSpacing(True)
    if getattr(_thread, "map_threads", None):
        maurer.SetNumberOfWorkUnits(_thread.map_threads)
    squared = maurer.Execute(image)
    return sitk.GetArrayViewFromImage(squared), order, squared


def map_distances(goal: np.ndarray, points: np.ndarray, low: np.ndarray, shape: Sequence[int],
                  sampling: Sequence[float]) -> np.ndarray:
    """Exact distance (mm) from each of `points` to the nearest of `goal`, both inside the box starting at `low`
    with `shape`, read from a distance map of `goal` over that box (squared distances, the square root taken at
    the points only)."""
    values, order, squared = _squared_map(goal, low, shape, sampling)
    strides = np.empty(len(order), np.int64)  # of the map, per axis of the points
    strides[order] = [int(np.prod(values.shape[a + 1:])) for a in range(values.ndim)]
    found = np.take(values.ravel(), points @ strides - int(low @ strides))
    found = np.sqrt(np.maximum(found, 0).astype(np.float64))  # the goal itself is at 0 or below
    del values, squared  # the image holds the memory the view reads: released only once read
    return found


def band_axis(goal_low: np.ndarray, goal_high: np.ndarray, low: np.ndarray, high: np.ndarray) -> int:
    """The axis along which the goal (box [goal_low, goal_high]) covers the smallest share of the box [low, high]:
    `band_distances` along it needs the 2D maps of the fewest voxels."""
    return int(np.argmin((goal_high - goal_low + 1) / (high - low + 1)))


def band_distances(goal: np.ndarray, points: np.ndarray, low: np.ndarray, high: np.ndarray,
                   sampling: Sequence[float], axis: int) -> np.ndarray:
    """Exact distance (mm) from each of `points` to the nearest of `goal`, both inside the box [low, high]: a 2D
    distance map of each of the goal's rows along `axis`, then along `axis` the lower envelope of the rows'
    parabolas per column, read at the points only (`envelope.py`, in float64). Costs the voxels of the goal's
    band of rows and a lookup per point, where a map costs every voxel of the box."""
    from helpers.evaluation.distances.envelope import envelopes, read_envelopes, row_maps

    spacing = np.asarray(sampling, dtype=np.float64)
    axes = np.array([axis, *(a for a in range(len(spacing)) if a != axis)])
    band_low = low.copy()
    band_low[axis] = goal[:, axis].min()
    shape = (high - band_low + 1)[axes]
    shape[0] = goal[:, axis].max() - band_low[axis] + 1
    rows = row_maps((goal - band_low)[:, axes], shape, spacing[axes[1]], spacing[axes[2]])
    s2 = float(spacing[axis] ** 2)
    verts, starts, last = envelopes(rows, s2)
    return np.sqrt(read_envelopes(points, band_low, axes, rows, verts, starts, last, s2))


@lru_cache(maxsize=16)
def _near_offsets(sampling: tuple[float, ...], near_voxels: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets (voxels) within radius R, nearest first, their distances (mm) and the half-widths of their box.

    R is `near_voxels` x the coarsest spacing, but no more than near_voxels + 1 voxels along any axis, so every
    offset outside the box lies at R or farther: a hit among them is the nearest voxel."""
    spacing = np.asarray(sampling, dtype=np.float64)
    half = np.minimum(np.floor(near_voxels * spacing.max() / spacing), near_voxels + 1).astype(int)
    radius = min(near_voxels * spacing.max(), float(((half + 1) * spacing).min()))
    grid = np.stack(np.meshgrid(*[np.arange(-h, h + 1) for h in half], indexing="ij"), -1).reshape(-1, len(half))
    dist = np.sqrt(((grid * spacing) ** 2).sum(1))
    near = dist <= radius
    keep = np.argsort(dist[near], kind="stable")
    return grid[near][keep], dist[near][keep], half


def near_distances(points: np.ndarray, target: BorderSet, label: int, sampling: Sequence[float]) -> np.ndarray | None:
    """Distance (mm) of each point whose nearest border voxel of `label` lies within the local search, inf for
    the others. Nearest offsets first, so the first hit is the nearest voxel. None, without a search, when most
    points lie beyond the search's reach: a map or a tree then measures them all at once."""
    offsets, dist, half = _near_offsets(tuple(float(s) for s in sampling), min(NEAR_VOXELS, BorderSet.PAD - 1))
    goal_low, goal_high = target.box[label]
    todo = np.flatnonzero(_in_box(points, goal_low - half, goal_high + half))  # the others are farther
    if len(todo) < NEAR_GIVE_UP * len(points):
        return None
    out = np.full(len(points), np.inf)
    flat, steps, grid = target.flat(points[todo]), offsets @ target.strides, target.grid.ravel()
    first_shell, searched = max(sampling), len(todo)
    for step, d in zip(steps, dist):
        if not todo.size or (d > first_shell and len(todo) > NEAR_GIVE_UP * searched):
            break  # done, or mostly far points: a map or a tree measures them at once
        hit = grid[flat + step] == label
        out[todo[hit]] = d
        todo, flat = todo[~hit], flat[~hit]
    return out


def _reach(points: np.ndarray, low: np.ndarray, high: np.ndarray, goal: np.ndarray, goal_box: tuple,
           spacing: np.ndarray) -> float:
    """An upper bound (mm) of the distance from any of `points` (in the box [low, high]) to its nearest goal voxel:
    any goal voxels give one. When the goal reaches beyond the points' box (a crop may spare some of it), the
    largest over blocks of REACH_BLOCK voxels holding points of the distance from the block's centre to the
    nearest of some goal voxels, plus half the block's diagonal; otherwise from the box's centre."""
    if np.all(goal_box[0] >= low) and np.all(goal_box[1] <= high):
        sample = goal[:: max(1, len(goal) // 4096)]  # a few thousand goal voxels suffice
        to_goal = np.sqrt((((sample - (low + high) / 2) * spacing) ** 2).sum(1).min())
        return float(to_goal + np.sqrt((((high - low) / 2 * spacing) ** 2).sum()))
    occupied = np.zeros(tuple(high // REACH_BLOCK + 1), bool)
    occupied[tuple((points // REACH_BLOCK).T)] = True
    blocks = np.argwhere(occupied)
    centres, half = (blocks * REACH_BLOCK + (REACH_BLOCK - 1) / 2) * spacing, (REACH_BLOCK - 1) / 2 * spacing
    sample = goal[:: max(1, len(goal) // 32768)] * spacing
    to_goal = _tree(sample).query(centres, workers=WORKERS)[0]
    return float(to_goal.max() + np.sqrt((half ** 2).sum()))


def far_distances(points: np.ndarray, target: BorderSet, label: int, sampling: Sequence[float]) -> np.ndarray:
    """Exact distance (mm) from each point to the nearest border voxel of `label`, by a distance map or a KD-tree
    over the target voxels that can be the nearest to one of the points, whichever costs less."""
    spacing = np.asarray(sampling, dtype=np.float64)
    goal_low, goal_high = target.box[label]
    low, high = _extent(points)
    crop_low, crop_high = goal_low, goal_high
    # the most a crop of the target can save: map voxels beyond the points' own box, or the tree's target voxels
    beyond = np.prod(np.maximum(high, goal_high) - np.minimum(low, goal_low) + 1) - np.prod(high - low + 1)
    if max(MAP_NS * float(beyond), TREE_BUILD_NS * len(target.points[label])) > REACH_NS * len(points):
        margin = np.floor(_reach(points, low, high, target.points[label], target.box[label], spacing)
                          / spacing).astype(int) + 1
        crop_low, crop_high = np.maximum(low - margin, goal_low), np.minimum(high + margin, goal_high)
    whole = bool(np.all(crop_low == goal_low) and np.all(crop_high == goal_high))
    # target voxels beyond the margin lie farther from every point than the bound: never the nearest
    goal = target.points[label] if whole else target.points_in(label, crop_low, crop_high)
    start, stop = np.minimum(low, crop_low), np.maximum(high, crop_high)
    axis = band_axis(crop_low, crop_high, start, stop)  # the goal lies within the crop
    band = stop - start + 1
    band[axis] = crop_high[axis] - crop_low[axis] + 1
    built = whole and target.has_tree(label, sampling)
    costs = {"map": MAP_NS * float(np.prod(stop - start + 1)),
             "band": BAND_VOXEL_NS * float(np.prod(band)) + BAND_POINT_NS * len(points),
             "tree": TREE_QUERY_NS * len(points) + (0 if built else TREE_BUILD_NS * len(goal))}
    method = FAR_METHOD or min(costs, key=costs.__getitem__)
    if method == "map":
        return map_distances(goal, points, start, stop - start + 1, sampling)
    if method == "band":
        return band_distances(goal, points, start, stop, sampling, axis)
    tree = target.tree(label, sampling) if whole else _tree(goal * spacing)
    return tree.query(points * spacing, workers=WORKERS)[0]


ENGINE_ENV = "SPIDER_KIT_DISTANCES"  # "fast" (default) or "plain"
ENGINES = ("fast", "plain")


def engine() -> str:
    """The distance engine in use: `fast` (this module) unless SPIDER_KIT_DISTANCES says `plain`."""
    name = os.environ.get(ENGINE_ENV, "fast").strip().lower() or "fast"
    if name not in ENGINES:
        from helpers.core.errors import KitError

        raise KitError(f"{ENGINE_ENV}={name!r} is not a distance engine: use one of {', '.join(ENGINES)}")
    return name


def distances_to(sources: list[np.ndarray], target: BorderSet, label: int, sampling: Sequence[float]
                 ) -> list[np.ndarray]:
    """Distance (mm) from each point of every set in `sources` to the nearest border voxel of `label`: the far
    points of all sets measured together, by one map or tree (several instances matched to one label). With
    `SPIDER_KIT_DISTANCES=plain`, the plain method instead (helpers/evaluation/distances/plain.py)."""
    if engine() == "plain":
        from helpers.evaluation.distances import plain

        return plain.distances_to(sources, target, label, sampling)
    near = [near_distances(points, target, label, sampling) for points in sources]
    rest = [None if d is None else np.flatnonzero(np.isinf(d)) for d in near]  # None: every point
    far_points = [p if r is None or len(r) == len(p) else p[r] for p, r in zip(sources, rest)]
    counts = [len(p) for p in far_points]
    if not sum(counts):
        return near
    far = far_distances(np.concatenate(far_points) if len(far_points) > 1 else far_points[0], target, label, sampling)
    out = []
    for d, r, part in zip(near, rest, np.split(far, np.cumsum(counts)[:-1])):
        if r is not None:
            d[r] = part
        out.append(part if r is None else d)
    return out


def directed_distances(source: BorderSet, source_label: int, target: BorderSet, target_label: int,
                       sampling: Sequence[float]) -> np.ndarray:
    """Distance (mm) from each border voxel of `source_label` to the nearest border voxel of `target_label`."""
    return distances_to([source.points[source_label]], target, target_label, sampling)[0]


def symmetric_distances(a: BorderSet, a_label: int, b: BorderSet, b_label: int,
                        sampling: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """(b's border to a's, a's border to b's) distances in mm; both labels must have a border."""
    return (directed_distances(b, b_label, a, a_label, sampling), directed_distances(a, a_label, b, b_label, sampling))
