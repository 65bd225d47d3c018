"""The synthetic patient: a lumbar spine as superellipsoid blobs along a lordotic centreline, drawn onto any
grid as a soft-edged image and a SPIDER mask.

The anatomy lives in world LPS millimetres (origin at the centre of the sacrum's top endplate): vertebral
bodies with pedicles, laminae and spinous processes, discs between them, the canal behind, an unlabelled sacrum
(one fused bone) below, muscle, fat, vessels and viscera around. `rasterise` samples it with partial volume;
helpers.data.synth turns that into series and files.

Used by notebook 00 (through helpers.data.synth).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter

from helpers.data.labels import CANAL_LABEL, DISC_LABELS, VERTEBRA_LABELS

# relative tissue intensities per contrast (t1, t2, t2_SPACE)
TISSUES = {
    "muscle": (0.30, 0.22, 0.25),
    "fat": (0.95, 0.70, 0.62),
    "viscera": (0.42, 0.45, 0.42),
    "vessel": (0.05, 0.08, 0.25),
    "csf": (0.14, 0.95, 1.00),
    "cortex": (0.08, 0.08, 0.10),
    "marrow": (0.72, 0.45, 0.40),
    "annulus": (0.22, 0.25, 0.30),
    "nucleus": (0.36, 0.95, 0.98),  # T1: darker than bone; T2: bright unless degenerated
}
CONTRAST_INDEX = {"t1": 0, "t2": 1, "t2_SPACE": 2}

# ---------------------------------------------------------------- anatomy
@dataclass
class Blob:
    """A superellipsoid in the spine's local frame at arclength `s` (u: left, v: posterior, w: up)."""

    s: float
    offset_v: float  # shift along the local posterior axis
    shift_u: float
    semi: tuple[float, float, float]  # (u, v, w) half sizes in mm
    label: int
    tissue: str
    inner_tissue: str | None = None  # drawn inside, `rim` mm from the surface (marrow in cortex)
    rim: float = 1.5
    power: float = 4.0
    wedge: float = 0.0  # >0: taller anteriorly (lordotic disc)
    tilt: float = 0.0  # extra rotation about the left-right axis (spinous processes point down)
    scale: float = 1.0  # intensity factor (disc degeneration)
    fused: bool = False  # one bone with its neighbours: its marrow is painted after all their cortex (sacrum)


@dataclass
class Anatomy:
    s: np.ndarray  # arclength samples, mm
    centre: np.ndarray  # (len(s), 3) world points of the body centreline
    phi: np.ndarray  # forward tilt of the column at each s, radians
    blobs: list[Blob]
    canal_offset: float
    canal_radii: tuple[float, float]  # (left-right, anterior-posterior) half sizes
    body_half_depth: float
    skin_offset: float
    fat_thickness: float
    belly_offset: float
    top_of_vertebra: dict[int, float]  # labelled vertebra k -> highest world z of its body
    level_height: float


def _frame(phi: float) -> tuple[np.ndarray, np.ndarray]:
    """Up (t) and posterior (n) unit vectors of a column tilted forward by `phi`."""
    return np.array([0.0, -np.sin(phi), np.cos(phi)]), np.array([0.0, np.cos(phi), np.sin(phi)])


def make_anatomy(rng: np.random.Generator, n_vertebrae: int) -> Anatomy:
    """One patient's spine with `n_vertebrae` labelled vertebrae above the sacrum, and two more above."""
    phi0, s_apex = rng.uniform(0.40, 0.62), rng.uniform(110, 160)
    half_depth = rng.uniform(15.5, 18.5)
    canal = (rng.uniform(9, 11.5), rng.uniform(6, 8))
    blobs, top_s = [], {}
    s = 0.0
    for k in range(1, n_vertebrae + 3):
        degeneration = rng.uniform(0, 1) * (1.0 if k <= 2 else 0.5)
        hd = (rng.uniform(6, 9) if k == 1 else rng.uniform(7.5, 11)) * (1 - 0.3 * degeneration)
        width = rng.uniform(19, 23) - 0.4 * k
        label_d = DISC_LABELS[k - 1] if k <= n_vertebrae + 1 else 0
        blobs.append(Blob(s + hd / 2, 0, 0, (width, half_depth - 1, hd / 2 + 1.2), label_d, "annulus",
                          "nucleus", rim=2.0, power=3.0, wedge=0.25 if k == 1 else 0.12,
                          scale=1 - 0.65 * degeneration))
        s += hd
        hv = rng.uniform(24, 28.5) * (1 - 0.015 * (k - 1))
        label_v = VERTEBRA_LABELS[k - 1] if k <= n_vertebrae else 0
        sc = s + hv / 2
        top_s[k] = (sc, hv)
        blobs.append(Blob(sc, 0, 0, (width + 2, half_depth, hv / 2), label_v, "cortex", "marrow"))
        ped_v = half_depth + canal[1]
        for side in (-1, 1):  # pedicles beside the canal
            blobs.append(Blob(sc + 3, ped_v, side * (canal[0] + 3), (3.5, canal[1] + 2, 6.5), label_v,
                              "cortex", "marrow", rim=1.0, power=2.5))
        lamina_v = half_depth + 2 + 2 * canal[1] + 3.5
        blobs.append(Blob(sc + 1, lamina_v, 0, (canal[0] + 5, 3.5, 9.5), label_v, "cortex", "marrow",
                          rim=1.0, power=3.0))
        sp_len = rng.uniform(22, 32)
        blobs.append(Blob(sc - 3, lamina_v + sp_len / 2 + 1, 0, (3.5, sp_len / 2, 7.5), label_v,
                          "cortex", "marrow", rim=1.0, power=3.0, tilt=0.25))
        s += hv
    for j in range(5):  # sacrum: five segments fused into one bone, tapering and curving back, unlabelled
        blobs.append(Blob(-10 - 14 * j, -1.5 * j, 0, (24 - 3.5 * j, half_depth - 1.8 * j, 11.5 - 0.5 * j),
                          0, "cortex", "marrow", rim=1.5, power=3.0, wedge=0.15, fused=True))
    # centreline: forward tilt phi falls with height (lordosis), sacrum tilts back below s=0
    grid = np.arange(-110.0, s + 80.0, 1.0)
    phi = np.where(grid >= 0, np.clip(phi0 * (1 - grid / s_apex), -0.4, None),
                   np.clip(phi0 - 0.008 * grid, None, 1.05))
    tangent = np.stack([np.zeros_like(phi), -np.sin(phi), np.cos(phi)], axis=1)
    centre = np.cumsum(tangent, axis=0)
    centre -= centre[np.searchsorted(grid, 0.0)]
    anatomy = Anatomy(grid, centre, phi, blobs, half_depth + 2 + canal[1], canal, half_depth,
                      skin_offset=half_depth + 2 + 2 * canal[1] + 7 + 30 + rng.uniform(15, 35),
                      fat_thickness=rng.uniform(8, 35), belly_offset=rng.uniform(140, 210),
                      top_of_vertebra={}, level_height=0)
    for k, (sc, hv) in top_s.items():
        c, ph = _at(anatomy, sc)
        anatomy.top_of_vertebra[k] = c[2] + hv / 2 * np.cos(ph) + half_depth * abs(np.sin(ph))
    anatomy.level_height = s / (n_vertebrae + 2)
    return anatomy


def _at(an: Anatomy, s: float) -> tuple[np.ndarray, float]:
    i = int(np.clip(np.searchsorted(an.s, s), 0, len(an.s) - 1))
    return an.centre[i], float(an.phi[i])


# ---------------------------------------------------------------- rasterising
@dataclass
class Grid:
    """An axis-aligned LPS grid: origin and spacing (x, y, z), shape (nz, ny, nx)."""

    origin: tuple[float, float, float]
    spacing: tuple[float, float, float]
    shape: tuple[int, int, int]

    def axes(self, x_offset: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        nz, ny, nx = self.shape
        x = self.origin[0] + (np.arange(nx) + x_offset) * self.spacing[0]
        y = self.origin[1] + np.arange(ny) * self.spacing[1]
        z = self.origin[2] + np.arange(nz) * self.spacing[2]
        return x, y, z


def _blob_sd(b: Blob, an: Anatomy, x, y, z):
    """Approximate signed distance (mm) to a blob, on broadcast coordinate arrays."""
    c, phi = _at(an, b.s)
    t, n = _frame(phi + b.tilt)
    _, n0 = _frame(phi)
    centre = c + n0 * b.offset_v
    dx, dy, dz = x - (centre[0] + b.shift_u), y - centre[1], z - centre[2]
    u, v, w = dx, dy * n[1] + dz * n[2], dy * t[1] + dz * t[2]
    a_u, a_v, a_w = b.semi
    a_w_local = a_w * (1 - b.wedge * np.clip(v / a_v, -1, 1))
    p = b.power
    f = (np.abs(u / a_u) ** p + np.abs(v / a_v) ** p) ** (1 / p)
    f = (f ** p + np.abs(w / a_w_local) ** p) ** (1 / p)
    return (f - 1) * min(a_u, a_v, a_w)


def _bbox(b: Blob, an: Anatomy, axes) -> tuple[slice, slice, slice] | None:
    c, phi = _at(an, b.s)
    _, n0 = _frame(phi)
    centre = c + n0 * b.offset_v + np.array([b.shift_u, 0, 0])
    r = max(b.semi) * 1.45 + 3
    out = []
    for ax, lo, hi in zip(axes[::-1], centre[::-1] - r, centre[::-1] + r):  # z, y, x
        i0, i1 = np.searchsorted(ax, lo), np.searchsorted(ax, hi)
        if i1 <= i0:
            return None
        out.append(slice(i0, i1))
    return tuple(out)


class _Canvas:
    """Alpha-composites soft tissue memberships into an image and hard labels into a mask."""

    def __init__(self, shape, contrast: int, tau: float, texture: np.ndarray):
        self.img = np.zeros(shape, np.float32)
        self.lab = np.zeros(shape, np.int16)
        self.contrast, self.tau, self.texture = contrast, tau, texture

    def paint(self, sd, tissue: str, where=(slice(None),) * 3, scale=1.0, label=None, texture=0.0):
        m = 1.0 / (1.0 + np.exp(np.clip(sd / self.tau, -30, 30)))
        val = TISSUES[tissue][self.contrast] * scale
        if texture:
            val = val * (1 + texture * self.texture[where])
        region = self.img[where]
        region += m * (val - region)
        if label is not None:
            self.lab[where][np.broadcast_to(sd < 0, self.lab[where].shape)] = label


def _union_max(*arrays):
    """Signed distance of an intersection: the largest of several (broadcast) distances."""
    return functools.reduce(np.maximum, arrays)


def _lookup(an: Anatomy, z: np.ndarray, offset: float):
    """World y of the point `offset` mm behind the centreline, and the tilt there, as functions of z."""
    pts = an.centre + np.stack([np.zeros_like(an.phi), np.cos(an.phi), np.sin(an.phi)], 1) * offset
    return np.interp(z, pts[:, 2], pts[:, 1]), np.interp(z, pts[:, 2], an.phi)


def rasterise(an: Anatomy, grid: Grid, contrast: str, rng: np.random.Generator, supersample: int):
    """Image (float, about 0..1, before noise) and SPIDER mask on an LPS grid."""
    ci = CONTRAST_INDEX[contrast]
    shape = grid.shape
    texture = gaussian_filter(rng.standard_normal(shape).astype(np.float32),
                              sigma=[max(0.5, 4 / s) for s in grid.spacing[::-1]])
    texture /= texture.std() + 1e-6
    tau = 0.3 * min(grid.spacing[1:])
    images, label = [], None
    for k in range(supersample):
        off = (k + 0.5) / supersample - 0.5
        x, y, z = grid.axes(off)
        X, Y, Z = x[None, None, :], y[None, :, None], z[:, None, None]
        cv = _Canvas(shape, ci, tau, texture)
        y_spine, _ = _lookup(an, z, 0.0)
        y_spine = y_spine[:, None, None]
        y_body = y_spine.mean() + 0.4 * (y_spine - y_spine.mean())  # the back is flatter than the spine
        skin = y_body + an.skin_offset
        belly = y_body - an.belly_offset
        cv.paint(_union_max(Y - skin, belly - Y, np.abs(X) - 160), "muscle")
        cv.paint(np.maximum(skin - an.fat_thickness - Y, Y - skin), "fat")
        cv.paint(np.maximum(belly + 12 - Y, Y - belly), "fat")
        front = y_spine - an.body_half_depth - 22
        viscera = _union_max(Y - front, belly + 12 - Y)
        cv.paint(viscera, "viscera", texture=0.35)
        for side, r in ((1, 10.0), (-1, 11.0)):  # aorta (left), vena cava (right), above the bifurcation
            yv = y_spine - an.body_half_depth - 4 - r
            cv.paint(np.maximum(np.sqrt((X - side * 17) ** 2 + (Y - yv) ** 2) - r, 45 - Z + 0 * X), "vessel")
        ru, rv = an.canal_radii
        yc, phc = _lookup(an, z, an.canal_offset)
        yc, phc = yc[:, None, None], phc[:, None, None]
        radial = np.sqrt((X / ru) ** 2 + ((Y - yc) * np.cos(phc) / rv) ** 2)
        z_end = _lookup_z(an, -45.0)
        epidural = (np.sqrt((X / (ru + 1.5)) ** 2 + ((Y - yc - 1.5) * np.cos(phc) / (rv + 3)) ** 2) - 1) * rv
        cv.paint(np.maximum(epidural, z_end - Z), "fat")
        cv.paint(np.maximum((radial - 1) * min(ru, rv), z_end - Z), "csf", label=CANAL_LABEL)
        axes = (x, y, z)
        # unlabelled bone first, then labelled structures; discs last so they win where they touch bone
        order = sorted(an.blobs, key=lambda b: (b.label != 0, b.tissue == "annulus"))
        fused = []  # marrow of fused segments waits for the last of their cortex: no cortex lines inside the bone
        for i, b in enumerate(order):
            box = _bbox(b, an, axes)
            if box is not None:
                sd = _blob_sd(b, an, X[..., box[2]], Y[:, box[1], :], Z[box[0]])
                lab = b.label if b.label else None
                if lab is None and b.tissue == "cortex":
                    lab = 0  # the sacrum and partly visible vertebrae are bone without a label
                cv.paint(sd, b.tissue, box, b.scale, lab)
                if b.inner_tissue and b.fused:
                    fused.append((sd + b.rim, b, box))
                elif b.inner_tissue:
                    cv.paint(sd + b.rim, b.inner_tissue, box, b.scale, texture=0.08)
            if fused and not (i + 1 < len(order) and order[i + 1].fused):
                for sd_in, fb, fbox in fused:
                    cv.paint(sd_in, fb.inner_tissue, fbox, fb.scale, texture=0.08)
                fused.clear()
        images.append(cv.img)
        if k == supersample // 2:
            label = cv.lab
    return np.mean(images, axis=0), label


def _lookup_z(an: Anatomy, s: float) -> float:
    return float(np.interp(s, an.s, an.centre[:, 2]))
