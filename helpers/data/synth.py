"""Synthetic SPIDER: lumbar spine MR series in SPIDER's own layout, label values and file formats.

Each patient gets one anatomy (helpers.data.phantom: a lordotic lumbar spine with its vertebrae, discs, canal,
an unlabelled fused sacrum and the tissues around). Each series samples that anatomy on its own grid
(T1/T2: 2D TSE, LPS, thick sagittal slices; T2 SPACE: PIR, near-isotropic) with partial volume, a coil bias
field and Rician noise, and stores it in one of SPIDER's two intensity conventions. Same seed, same bytes.

Used by notebook 00.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk

from helpers.core.atomic import write_image_atomic, write_text_atomic
from helpers.data.axes import reorient
from helpers.data.labels import CANAL_LABEL
from helpers.data.phantom import CONTRAST_INDEX, Anatomy, Grid, make_anatomy, rasterise

OVERVIEW_COLUMNS = ["new_file_name", "subset", "num_vertebrae", "num_discs", "sex", "birth_date",
                    "Manufacturer", "MagneticFieldStrength", "PixelSpacing", "SliceThickness",
                    "SeriesDescription"]


# ---------------------------------------------------------------- series and dataset
@dataclass
class SeriesPlan:
    stem: str
    sequence: str
    orientation: str  # "LPS" or "PIR"
    grid: Grid
    supersample: int
    raw_convention: bool
    manufacturer: str
    field_strength: float


def _plan_series(rng, pid: int, an: Anatomy, n_vertebrae: int, scale: float,
                 sequences: list[str], pir_tse: bool) -> list[SeriesPlan]:
    z_bottom = -rng.uniform(45, 90)
    z_top = an.top_of_vertebra[n_vertebrae] + rng.uniform(4, 0.8 * an.level_height)
    ys = an.centre[:, 1][(an.centre[:, 2] > z_bottom) & (an.centre[:, 2] < z_top)]
    y_lo = ys.min() - an.body_half_depth - rng.uniform(45, 110)
    y_hi = ys.max() + an.skin_offset + rng.uniform(5, 25)
    x_mid = rng.uniform(-4, 4)
    umc = rng.uniform() < 0.6
    tse_inplane = 0.59 if umc else rng.uniform(0.3, 1.1)
    tse_thick = 3.3 if umc else rng.uniform(3.15, 5.5)
    tse_extent = rng.uniform(55, 85)
    manufacturer = "SIEMENS" if umc else str(rng.choice(["SIEMENS", "Philips", "GE"]))
    field_strength = 1.5 if umc else float(rng.choice([1.5, 3.0]))
    plans = []
    for seq in sequences:
        if seq == "t2_SPACE":
            inplane, thick, extent, orient = 0.47, 0.9, rng.uniform(55, 80), "PIR"
        else:
            inplane, thick, extent = tse_inplane, tse_thick, tse_extent
            orient = "PIR" if pir_tse else "LPS"
        s_in, s_th = inplane / scale, thick / np.sqrt(scale)
        nx = max(3, int(round(extent / s_th)))
        ny, nz = int(np.ceil((y_hi - y_lo) / s_in)), int(np.ceil((z_top - z_bottom) / s_in))
        origin = (x_mid - (nx - 1) * s_th / 2, y_lo, z_bottom)
        grid = Grid(origin, (s_th, s_in, s_in), (nz, ny, nx))
        plans.append(SeriesPlan(f"{pid}_{seq}", seq, orient, grid, int(min(3, np.ceil(s_th / s_in))),
                                raw_convention=orient == "PIR", manufacturer=manufacturer,
                                field_strength=field_strength))
    return plans


def _finish_image(img: np.ndarray, grid: Grid, rng, raw: bool) -> np.ndarray:
    """Coil bias field, Rician noise, then one of SPIDER's intensity conventions."""
    nz, ny, nx = grid.shape
    yy = np.linspace(0, 1, ny)[None, :, None]
    zz = np.linspace(0, 1, nz)[:, None, None]
    coil = np.exp(-(1 - yy) * rng.uniform(0.4, 1.0))  # spine coil behind the patient: brighter posteriorly
    wobble = 1 + 0.1 * np.cos(2 * np.pi * (rng.uniform(0.3, 1) * zz + rng.uniform()))
    img = img * coil * wobble
    sigma = rng.uniform(0.015, 0.04)
    img = np.sqrt((img + sigma * rng.standard_normal(img.shape)) ** 2
                  + (sigma * rng.standard_normal(img.shape)) ** 2)
    if raw:
        return (img * rng.uniform(700, 1300)).astype(np.float32)
    lo, hi = np.percentile(img, [5, 95])
    mapped = -1000 + (img - lo) / (hi - lo) * 4096
    return np.clip(mapped, -1000, 3096).astype(np.float32)


def _drop_cut_labels(mask: np.ndarray) -> np.ndarray:
    """Unlabel vertebrae and discs that touch the top or bottom of the field of view (not fully visible)."""
    cut = set(np.unique(mask[0])) | set(np.unique(mask[-1]))
    for value in cut - {0, CANAL_LABEL}:
        mask[mask == value] = 0
    return mask


def _to_sitk(arr: np.ndarray, grid: Grid, orientation: str) -> sitk.Image:
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(grid.spacing)
    img.SetOrigin(grid.origin)
    return img if orientation == "LPS" else reorient(img, orientation)



def make_patient(pid: int, seed: int, scale: float, index: int) -> list[tuple[SeriesPlan, sitk.Image, sitk.Image]]:
    """All series of one synthetic patient, sharing one anatomy."""
    rng = np.random.default_rng([seed, pid])
    n_vertebrae = int(rng.choice(np.arange(3, 10), p=[0.03, 0.05, 0.1, 0.17, 0.3, 0.25, 0.1]))
    an = make_anatomy(rng, n_vertebrae)
    r = rng.uniform()
    sequences = ["t1", "t2"] if r < 0.85 else (["t1"] if r < 0.93 else ["t2"])
    if rng.uniform() < 0.2 or index == 1:
        sequences.append("t2_SPACE")
    pir_tse = rng.uniform() < 0.1 or index == 2
    out = []
    for plan in _plan_series(rng, pid, an, n_vertebrae, scale, sequences, pir_tse):
        srng = np.random.default_rng([seed, pid, CONTRAST_INDEX[plan.sequence]])
        img, lab = rasterise(an, plan.grid, plan.sequence, srng, plan.supersample)
        img = _finish_image(img, plan.grid, srng, plan.raw_convention)
        lab = _drop_cut_labels(lab)
        out.append((plan, _to_sitk(img, plan.grid, plan.orientation), _to_sitk(lab, plan.grid, plan.orientation)))
    return out


def patient_ids(n: int, seed: int) -> list[int]:
    """Patient numbers 1.. with gaps, as in SPIDER."""
    rng = np.random.default_rng([seed, 0])
    return [int(v) for v in np.cumsum(1 + (rng.uniform(size=n) < 0.15))]


def validation_patients(ids: list[int], seed: int, fraction: float = 0.2) -> set[int]:
    """The patients of the `validation` subset (about a fifth, at least one when there are two)."""
    rng = np.random.default_rng([seed, 1])
    n_val = max(1 if len(ids) > 1 else 0, int(round(fraction * len(ids))))
    return set(int(p) for p in rng.permutation(ids)[:n_val])


def write_dataset(out: str | Path, cases: int = 10, seed: int = 0, scale: float = 1.0,
                  progress: bool = True) -> Path:
    """Write `cases` synthetic patients to `out` in SPIDER's layout; returns `out`."""
    from tqdm.auto import tqdm

    out = Path(out)
    if cases < 1:
        raise ValueError("cases must be at least 1")
    if not 0.05 <= scale <= 2:
        raise ValueError("scale must lie in [0.05, 2] (1.0 = SPIDER's real matrix sizes)")
    ids = patient_ids(cases, seed)
    val = validation_patients(ids, seed)
    rows = []
    for index, pid in enumerate(tqdm(ids, desc="synthetic patients", disable=not progress)):
        for plan, img, mask in make_patient(pid, seed, scale, index):
            write_image_atomic(img, out / "images" / f"{plan.stem}.mha")
            write_image_atomic(mask, out / "masks" / f"{plan.stem}.mha")
            values = np.unique(sitk.GetArrayViewFromImage(mask))
            sp = plan.grid.spacing
            rows.append({
                "new_file_name": plan.stem + ".mha", "subset": "validation" if pid in val else "training",
                "num_vertebrae": int(np.sum((values >= 1) & (values <= 25))),
                "num_discs": int(np.sum((values >= 201) & (values <= 225))),
                "sex": "MF"[pid % 2], "birth_date": "", "Manufacturer": plan.manufacturer,
                "MagneticFieldStrength": plan.field_strength,
                "PixelSpacing": f"[{sp[1]:.4f}, {sp[2]:.4f}]", "SliceThickness": f"{sp[0]:.4f}",
                "SeriesDescription": plan.sequence + " (synthetic)",
            })
    buf = io.StringIO()
    writer = csv.DictWriter(buf, OVERVIEW_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / "overview.csv", buf.getvalue())
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*.mha")) + ["overview.csv"]
    settings = {"cases": cases, "seed": seed, "scale": scale, "generator": 2}  # 2: fused sacrum
    write_text_atomic(out / MARKER, json.dumps({"settings": settings, "files": files}, indent=1))
    return out


MARKER = ".synthetic.json"


def ensure_synthetic(out: str | Path, cases: int, seed: int = 0, scale: float = 1.0) -> bool:
    """Make the synthetic dataset unless `out` already holds one made with these settings.

    Returns True when it wrote data. Refuses a non-empty folder that it did not make, so real data
    is never overwritten.
    """
    out = Path(out)
    settings = {"cases": cases, "seed": seed, "scale": scale, "generator": 2}  # 2: fused sacrum
    marker = out / MARKER
    if marker.is_file():
        old = json.loads(marker.read_text())
        if old.get("settings") == settings:
            return False
        for name in old.get("files", []):  # files of the previous synthetic set, and only those
            (out / name).unlink(missing_ok=True)
    elif out.exists() and any(out.iterdir()):
        from helpers.core.errors import DataError

        raise DataError(out, "is not empty and was not made by the synthetic generator; "
                             "choose an empty folder for synthetic data")
    write_dataset(out, cases=cases, seed=seed, scale=scale)
    return True
