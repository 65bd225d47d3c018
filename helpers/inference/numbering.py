"""Instance numbering of a structure map: SPIDER's values (vertebrae 1.. and discs 201.. bottom-up, canal 100).

Vertebrae: connected components, where one that holds two bodies bridged past a disc (grown together beside a
disc the network drew too small) is first cut along that disc's mid-plane; big components (bodies) each start a
level, and so does a smaller one that lies at rows no big one covers (a partly visible end vertebra); the remaining
pieces (posterior elements, fragments) join the level whose centre is nearest in the superior-inferior direction;
two levels much closer than the usual distance between levels with no disc between them are one body in two pieces,
and a big piece that reaches past two other levels' centres (posterior elements drawn as one chain) is shared out
between the levels voxel by voxel.
Discs: every disc component takes the number of the gap between vertebra centres it lies in (disc 200+k lies
directly below vertebra k), so a small disc is never merged into its neighbour. What this numbering alone costs in
the challenge's score (reference masks -> structures -> numbering -> score) is measured by
helpers.evaluation.challenge.numbering_cost.

Used by notebooks 06 and 07 (through helpers.inference.predict, for predictions in SPIDER's values) and by
helpers.evaluation.evaluate (the numbering check).
"""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

from helpers.data.axes import orientation, reorient, to_canonical
from helpers.data.labels import CANAL, CANAL_LABEL, DISC, VERTEBRA
from helpers.data.spider import structure_mask

MAX_LEVEL = 25
BIG = 0.3  # a vertebra component at least this share of the largest is a body: it starts a level
BLADE_MARGIN_MM = 10.0  # a disc's mid-plane cuts bridged vertebrae up to this far beyond the disc's own rim
SPLIT_PITCH = 0.5  # neighbouring levels closer than this share of the usual distance, no disc between: one vertebra
CHAIN_LENGTH = 1.75  # a level start this many times the usual height, over two other levels' centres: a chain
FLAT = 0.65  # a disc component is disc-shaped when its thinnest spread is at most this share of its middle one


def _components(binary: np.ndarray, comps: np.ndarray | None = None,
                n: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Labelled components (or those of `comps`, labelled 1..n), their sizes, centre rows and (first, last) rows;
    rows run along axis 1, superior -> inferior. Computed from the foreground voxels only, in one pass each."""
    if comps is None:
        comps, n = ndimage.label(binary)
    if not n:
        return comps, np.zeros(0), np.zeros(0), np.zeros((0, 2), int)
    where = np.nonzero(comps)
    ids, rows = comps[where] - 1, where[1]
    sizes = np.bincount(ids, minlength=n).astype(float)
    centre = np.bincount(ids, weights=rows, minlength=n) / sizes
    span = np.empty((n, 2), int)
    span[:, 0], span[:, 1] = rows.max() + 1, -1
    np.minimum.at(span[:, 0], ids, rows)
    np.maximum.at(span[:, 1], ids, rows)
    return comps, sizes, centre, span


def _vertebra_levels(sizes, centre, span, big: float = BIG, alone: float = 0.05) -> np.ndarray:
    """Level owner of each component (index of the component that starts its level)."""
    n = len(sizes)
    if not n:
        return np.zeros(0, int)
    order = np.argsort(-sizes, kind="stable")
    largest = sizes.max()
    starts = [i for i in order if sizes[i] >= big * largest]
    spans = [tuple(span[i]) for i in starts]
    for i in order:
        if sizes[i] < alone * largest:
            break  # sorted by size: the rest are smaller still
        if sizes[i] >= big * largest:
            continue
        lo, hi = span[i]
        if all(hi < a or lo > b for a, b in spans):  # rows no level covers yet: a vertebra of its own
            starts.append(i)
            spans.append((lo, hi))
    starts_arr = np.array(starts)
    nearest = np.abs(centre[:, None] - centre[starts_arr][None, :]).argmin(1)
    return starts_arr[nearest]


def _without_chains(owner: np.ndarray, centre: np.ndarray, span: np.ndarray) -> tuple[np.ndarray, list[int]]:
    """Components that started a level, span CHAIN_LENGTH times the usual height and reach past the centres of two
    other levels are chains (the posterior elements of several vertebrae drawn as one piece), not bodies: they
    start no level, the remaining components join the nearest level again, and the chains are returned to be
    shared out voxel by voxel."""
    starts = np.unique(owner)
    if len(starts) < 3:
        return owner, []
    inside = (centre[starts][None, :] >= span[starts, :1]) & (centre[starts][None, :] <= span[starts, 1:])
    length = span[starts, 1] - span[starts, 0] + 1
    long = length >= CHAIN_LENGTH * np.median(length)  # a vertebra's own span reaches its neighbours' centres
    chains = [int(c) for c, k, far in zip(starts, inside.sum(1), long) if far and k >= 3]  # its centre, two others
    kept = np.array([c for c in starts if c not in chains])
    if not chains or not len(kept):
        return owner, []
    owner = kept[np.abs(centre[:, None] - centre[kept][None, :]).argmin(1)]
    return owner, chains


def _join_split_bodies(owner: np.ndarray, levels: np.ndarray, centre: np.ndarray, disc_stats: tuple
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Levels (lowest first) closer than SPLIT_PITCH times the median distance between neighbouring levels, with
    no disc centre between them, are one vertebra drawn in two pieces: the upper joins the lower. Without it a
    body split by a crack in the prediction counts twice and every number above it shifts by one."""
    if len(levels) < 3:
        return owner, levels
    _, disc_sizes, disc_rows, _ = disc_stats
    disc_rows = disc_rows[disc_sizes >= 0.1 * disc_sizes.max()] if len(disc_sizes) else disc_rows
    rows = centre[levels]
    pitch = float(np.median(np.abs(np.diff(rows))))
    kept = [0]
    for k in range(1, len(levels)):
        lower, upper = rows[kept[-1]], rows[k]  # rows run superior -> inferior: lower > upper
        if lower - upper < SPLIT_PITCH * pitch and not ((disc_rows < lower) & (disc_rows > upper)).any():
            owner = np.where(owner == levels[k], levels[kept[-1]], owner)
        else:
            kept.append(k)
    return owner, levels[kept]


def _lut(values: np.ndarray) -> np.ndarray:
    """Component index (1..n) -> value, with 0 for the background."""
    return np.concatenate([[0], values]).astype(np.int16)


def _disc_planes(discs: np.ndarray, sizes: np.ndarray, spacing: np.ndarray) -> list[tuple]:
    """(centre, normal, reach) in mm of each disc-shaped component: at least a tenth of the largest, flat (its
    thinnest principal axis at most FLAT times its middle one; a blob of a bloated prediction is not), with the
    thinnest axis as normal and reaching BLADE_MARGIN_MM beyond its rim."""
    planes, boxes = [], ndimage.find_objects(discs, len(sizes))
    for index in np.flatnonzero(sizes >= max(4, 0.1 * sizes.max())) + 1:
        box = boxes[index - 1]
        points = (np.argwhere(discs[box] == index) + [b.start for b in box]) * spacing
        centre = points.mean(0)
        variances, axes = np.linalg.eigh(np.cov((points - centre).T))
        if variances[0] > FLAT ** 2 * variances[1]:
            continue
        reach = float(np.sqrt(((points - centre) ** 2).sum(1).max())) + BLADE_MARGIN_MM
        planes.append((centre, axes[:, 0], reach))
    return planes


def _blade(shape: tuple, centre: np.ndarray, normal: np.ndarray, reach: float, spacing: np.ndarray) -> np.ndarray:
    """A disc's mid-plane, one standard digital plane thick (no face-connected path crosses it), out to `reach`."""
    half = 0.5 * float(np.abs(normal * spacing).sum())
    reach += half
    low = np.maximum(((centre - reach) / spacing).astype(int), 0)
    high = np.minimum(np.ceil((centre + reach) / spacing).astype(int) + 1, shape)
    grid = np.meshgrid(*[np.arange(a, b) * s - c for a, b, s, c in zip(low, high, spacing, centre)],
                       indexing="ij", sparse=True)
    along = sum(g * v for g, v in zip(grid, normal))
    across = sum(g * g for g in grid) - along ** 2
    blade = np.zeros(shape, bool)
    blade[tuple(slice(a, b) for a, b in zip(low, high))] = (np.abs(along) <= half) & (across <= reach ** 2)
    return blade


def _split_at_discs(vertebra: np.ndarray, stats: tuple, disc_stats: tuple, spacing: np.ndarray) -> tuple:
    """Vertebra components that a disc's mid-plane cuts into two or more bodies (BIG), split there; the voxels on
    the plane go to the nearest piece. Other components are kept whole. `stats` and the result: `_components`
    of the vertebrae; `disc_stats`: of the discs. Only the planes of discs that some vertebra component reaches
    past by BLADE_MARGIN_MM on both sides are drawn."""
    comps, _, _, span = stats
    n, rows = len(span), span * spacing[1]
    blade = np.zeros(vertebra.shape, bool)
    for centre, normal, reach in _disc_planes(disc_stats[0], disc_stats[1], spacing):
        if ((rows[:, 0] < centre[1] - BLADE_MARGIN_MM) & (rows[:, 1] > centre[1] + BLADE_MARGIN_MM)).any():
            blade |= _blade(vertebra.shape, centre, normal, reach, spacing)
    blade &= vertebra
    if not blade.any():
        return stats
    pieces, count = ndimage.label(vertebra & ~blade)
    if not count:  # the planes cover every vertebra voxel: nothing to split
        return stats
    sizes = np.bincount(pieces.ravel(), minlength=count + 1)[1:]
    owner = np.zeros(count + 1, np.int64)
    owner[pieces] = comps  # every piece lies inside one component
    bodies = np.bincount(owner[1:][sizes >= BIG * sizes.max()], minlength=n + 1)
    split = np.nonzero(bodies >= 2)[0]
    if not len(split):
        return stats
    whole = np.ones(n + 1, bool)
    whole[0] = whole[split] = False
    lut = np.zeros(n + 1, np.int64)
    lut[whole] = np.arange(1, whole.sum() + 1)  # the whole components, 1..k
    out, next_label = lut[comps], int(whole.sum())
    for c in split:
        box = ndimage.find_objects((comps == c).view(np.uint8))[0]
        mine = comps[box] == c
        part = _fill_from_neighbours(np.where(mine, pieces[box], 0), mine)
        ids, filled = np.unique(part[mine], return_inverse=True)
        out[box][mine] = next_label + 1 + filled
        next_label += len(ids)
    return _components(vertebra, out, next_label)


def _fill_from_neighbours(part: np.ndarray, mine: np.ndarray) -> np.ndarray:
    """`part` with its unlabelled voxels inside `mine` (a plane one or two voxels thick) given the largest piece
    label among their face neighbours, layer by layer until none is left."""
    todo = np.argwhere(mine & (part == 0))
    while len(todo):
        best = np.zeros(len(todo), part.dtype)
        for axis in range(part.ndim):
            for step in (-1, 1):
                at = todo.copy()
                at[:, axis] += step
                inside = (at[:, axis] >= 0) & (at[:, axis] < part.shape[axis])
                best[inside] = np.maximum(best[inside], part[tuple(at[inside].T)])
        if not best.any():  # nothing around: leave the rest to the largest piece of the component
            best[:] = np.bincount(part[part > 0]).argmax()
        part[tuple(todo[best > 0].T)] = best[best > 0]
        todo = todo[best == 0]
    return part


def number_array(structures: np.ndarray, spacing=(1.0, 1.0, 1.0)) -> np.ndarray:
    """SPIDER values from a structure map in canonical PIR array order (axis 1 runs superior -> inferior);
    `spacing` in mm, in array order."""
    out = np.zeros(structures.shape, np.int16)
    found = ndimage.find_objects((structures != 0).view(np.uint8))
    if found:  # number within the bounding box of the structures: the same numbers, fewer voxels to label
        out[found[0]] = _number_box(structures[found[0]], np.asarray(spacing, float))
    return out


def _number_box(structures: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """`number_array` on a crop: rows only compared with each other, so any crop along axis 1 gives the same."""
    out = np.zeros(structures.shape, np.int16)
    out[structures == CANAL] = CANAL_LABEL
    vertebra = structures == VERTEBRA
    stats, disc_stats = _components(vertebra), _components(structures == DISC)
    if len(stats[1]) and len(disc_stats[1]):
        stats = _split_at_discs(vertebra, stats, disc_stats, spacing)
    comps, sizes, centre, span = stats
    owner = _vertebra_levels(sizes, centre, span)
    owner, chains = _without_chains(owner, centre, span)
    levels = np.unique(owner)
    levels = levels[np.argsort(-centre[levels], kind="stable")]  # lowest level first
    owner, levels = _join_split_bodies(owner, levels, centre, disc_stats)
    level_rows = centre[levels]
    if len(owner):
        rank = np.zeros(len(sizes), np.int64)
        rank[levels] = np.arange(1, len(levels) + 1)
        out[comps > 0] = _lut(np.minimum(rank[owner], MAX_LEVEL))[comps[comps > 0]]
        for chain in chains:  # voxel by voxel: each row to the level whose centre is nearest
            where = np.nonzero(comps == chain + 1)
            nearest = np.abs(where[1][:, None] - level_rows[None, :]).argmin(1)
            out[where] = np.minimum(nearest + 1, MAX_LEVEL)
    comps, sizes, centre, span = disc_stats
    if len(sizes):
        if len(level_rows):
            below = (level_rows[None, :] > centre[:, None]).sum(1)  # vertebra centres below each disc piece
        else:  # no vertebrae: number the discs' own levels bottom-up
            owner = _vertebra_levels(sizes, centre, span)
            levels = np.unique(owner)
            below = (centre[levels][None, :] > centre[owner][:, None]).sum(1)
        out[comps > 0] = _lut(200 + np.minimum(below + 1, MAX_LEVEL))[comps[comps > 0]]
    return out


def to_spider_values(structures: sitk.Image) -> sitk.Image:
    """SPIDER's values from a structure map (0-3) on the same grid: canal 100, vertebrae 1.. and discs 201..."""
    canon = to_canonical(structures)
    img = sitk.GetImageFromArray(number_array(sitk.GetArrayFromImage(canon), canon.GetSpacing()[::-1]))
    img.CopyInformation(canon)
    return reorient(img, orientation(structures))


def renumbered(mask: sitk.Image) -> sitk.Image:
    """A SPIDER mask reduced to structures and numbered again by the kit: what numbering alone changes."""
    return to_spider_values(structure_mask(mask))

