"""The last pass of a separable distance transform, evaluated at given points only (compiled with numba).

A squared Euclidean distance map is separable: D(q, c) = min over rows r of (q - r)^2 s^2 + G(r, c), where r runs
along one axis (spacing s), c is a column across the other two and G(r, c) the squared 2D distance within row r.
When the target set is thin along that axis (a vertebra against a whole image), G is needed on its few rows only;
the minimum over them is the lower envelope of one parabola per row (Felzenszwalb & Huttenlocher, 2012), built once
per column and read at each point. So the distances of a million points to a vertebra cost the 2D maps of its rows
and a lookup per point, instead of a 3D map of the whole image.

Used by helpers.evaluation.distances.surface (`band_distances`).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def row_maps(goal: np.ndarray, shape: np.ndarray, su: float, sv: float) -> np.ndarray:
    """Squared 2D distance (mm^2) from every voxel of each row to the nearest goal voxel of the same row; inf in a
    row without any. `goal`: voxels (row, u, v) inside `shape`; su, sv: the spacing along u and v. Two passes:
    the nearest goal voxel along v, then the lower envelope of parabolas along u (exact, in float64)."""
    band, nu, nv = shape[0], shape[1], shape[2]
    out = np.full((band, nu, nv), np.inf)
    hit = np.zeros((band, nu, nv), np.bool_)
    for i in range(goal.shape[0]):
        hit[goal[i, 0], goal[i, 1], goal[i, 2]] = True
    sv2, su2 = sv * sv, su * su
    for r in range(band):
        for u in range(nu):  # along v: the nearest goal voxel of the line, both ways
            last = -1
            for v in range(nv):
                if hit[r, u, v]:
                    last = v
                if last >= 0:
                    out[r, u, v] = (v - last) * (v - last) * sv2
            last = -1
            for v in range(nv - 1, -1, -1):
                if hit[r, u, v]:
                    last = v
                if last >= 0:
                    out[r, u, v] = min(out[r, u, v], (last - v) * (last - v) * sv2)
        verts = np.empty(nu, np.int32)
        starts = np.empty(nu + 1, np.float64)
        column = np.empty(nu, np.float64)
        for v in range(nv):  # along u: lower envelope of the lines' parabolas
            for u in range(nu):
                column[u] = out[r, u, v]
            k = _envelope(column, su2, verts, starts)
            if k < 0:
                continue
            j = 0
            for u in range(nu):
                while j < k and starts[j + 1] <= u:
                    j += 1
                p = verts[j]
                out[r, u, v] = (u - p) * (u - p) * su2 + column[p]
    return out


@njit(cache=True, nogil=True)
def _envelope(values: np.ndarray, s2: float, verts: np.ndarray, starts: np.ndarray) -> int:
    """Lower envelope of the parabolas (q - p)^2 s2 + values[p] over the finite values: fills `verts` (the
    parabolas on it, in order) and `starts` (where each starts to be the lowest); returns the index of the last
    one (-1 when every value is inf)."""
    k = -1
    for q in range(values.shape[0]):
        f = values[q]
        if f == np.inf:
            continue
        fq = f + q * q * s2
        cross = -np.inf
        while k >= 0:
            p = verts[k]
            cross = (fq - (values[p] + p * p * s2)) / (2.0 * s2 * (q - p))
            if cross <= starts[k]:
                k -= 1  # the new parabola is lower wherever the last one was the lowest
                cross = -np.inf
            else:
                break
        k += 1
        verts[k] = q
        starts[k] = cross
    return k


@njit(cache=True, nogil=True)
def envelopes(rows: np.ndarray, s2: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower envelope, per column (u, v), of the parabolas (q - r)^2 s2 + rows[r, u, v] over the rows r with a
    finite value. Returns, per column: the rows on the envelope, where each starts to be the lowest, and the index
    of the last one."""
    band, nu, nv = rows.shape
    verts = np.empty((nu, nv, band), np.int32)
    starts = np.empty((nu, nv, band + 1), np.float64)
    last = np.empty((nu, nv), np.int64)
    column = np.empty(band, np.float64)
    for u in range(nu):
        for v in range(nv):
            for r in range(band):
                column[r] = rows[r, u, v]
            last[u, v] = _envelope(column, s2, verts[u, v], starts[u, v])
    return verts, starts, last


@njit(cache=True, nogil=True)
def read_envelopes(points: np.ndarray, low: np.ndarray, axes: np.ndarray, rows: np.ndarray, verts: np.ndarray,
                   starts: np.ndarray, last: np.ndarray, s2: float) -> np.ndarray:
    """Squared distance at each point (array coordinates; `low`: the voxel of rows[0, 0, 0]; `axes`: which point
    axis is the rows' axis, then the two across), from `envelopes`. Every column must hold at least one parabola."""
    out = np.empty(points.shape[0], np.float64)
    a, b, c = axes[0], axes[1], axes[2]
    for i in range(points.shape[0]):
        q, u, v = points[i, a] - low[a], points[i, b] - low[b], points[i, c] - low[c]
        lo, hi = 0, last[u, v]
        while lo < hi:  # the last parabola that starts at or before q
            mid = (lo + hi + 1) // 2
            if starts[u, v, mid] <= q:
                lo = mid
            else:
                hi = mid - 1
        p = verts[u, v, lo]
        out[i] = (q - p) * (q - p) * s2 + rows[p, u, v]
    return out
