"""One table of every series in a dataset: geometry, intensities, labels, and flags with reasons.

The `training` column says whether `resample` will use the series (the bad-value policy of
`spider.value_problems`, and a readable mask with known labels on the image's grid).

Used by notebooks 00 and 02.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.axes import canonical_values
from helpers.data.labels import CANAL_LABEL, DISC_LABELS, VERTEBRA_LABELS, unknown_labels
from helpers.data.spider import (
    Scan,
    Series,
    canonical_spacing,
    orientation,
    read_image,
    read_mask,
    scan_dataset,
    value_problems,
)


def intensity_convention(lo: float, hi: float, integer: bool) -> str:
    """Which of SPIDER's intensity conventions a value range looks like."""
    if lo >= -1000.5 and hi <= 3096.5 and lo < -500:
        return "mapped [-1000, 3096]"
    if lo >= 0 and hi <= 255 and integer:
        return "8-bit 0..255"
    if lo >= 0 and hi <= 5000:
        return "raw 0..~1500"
    return "unknown"


def _counts(values: np.ndarray) -> tuple[int, int, bool]:
    vs = set(values.tolist())
    return (len(vs & set(VERTEBRA_LABELS)), len(vs & set(DISC_LABELS)), CANAL_LABEL in vs)


def inspect_series(series: Series, overview_row: dict | None = None) -> dict:
    """One table row for one series; problems go to the `flags` column instead of raising."""
    row: dict = {"series": series.stem, "patient": series.patient, "sequence": series.sequence,
                 "subset": (overview_row or {}).get("subset", ""), "training": False}
    flags, blocking = [], []  # blocking: reasons why resample will not use the series
    try:
        image = read_image(series.image)
    except DataError as e:
        row["flags"] = str(e)
        return row
    arr = sitk.GetArrayViewFromImage(image)
    finite = arr[np.isfinite(arr)] if np.issubdtype(arr.dtype, np.floating) else arr
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (np.nan, np.nan)
    sample = arr[:: max(1, arr.shape[0] // 4)]
    integer = bool(np.array_equal(sample, np.round(sample)))
    spacing = canonical_spacing(image)
    row.update({
        "orientation": orientation(image),
        "shape (AP, SI, LR)": "x".join(str(n) for n in canonical_values(image.GetSize(), orientation(image))),
        "spacing LR mm": round(spacing[0], 3), "spacing SI mm": round(spacing[1], 3),
        "spacing AP mm": round(spacing[2], 3), "dtype": image.GetPixelIDTypeAsString(),
        "min": round(lo, 1), "p99": round(float(np.percentile(finite, 99)), 1) if finite.size else np.nan,
        "max": round(hi, 1),
        "convention": intensity_convention(lo, hi, integer) if finite.size else "unknown",
    })
    problems = value_problems(image)
    blocking += problems
    if row["convention"] == "unknown" and not problems:
        flags.append(f"intensity range {lo:g}..{hi:g} matches no SPIDER convention")
    if series.mask is None:
        blocking.append(f"has no mask (expected masks/{series.stem}.mha)")
    else:
        try:
            mask = read_mask(series.mask, image)
            values = np.unique(sitk.GetArrayViewFromImage(mask))
            n_vert, n_disc, canal = _counts(values)
            row.update({"labels": " ".join(str(v) for v in values if v), "vertebrae": n_vert,
                        "discs": n_disc, "canal": canal})
            bad = unknown_labels(values)
            if bad:
                blocking.append(f"unknown label values {bad}")
            if len(values) == 1 and values[0] == 0:
                blocking.append("empty mask (only background)")
            elif not canal:
                flags.append("no spinal canal (label 100)")
            if overview_row and str(overview_row.get("num_vertebrae", "")).strip() not in ("", str(n_vert)):
                flags.append(f"overview.csv says {overview_row['num_vertebrae']} vertebrae, mask has {n_vert}")
        except DataError as e:
            blocking.append(str(e))
    row["training"] = not blocking
    if blocking:
        blocking[-1] += ": not used for training"
    row["flags"] = "; ".join(blocking + flags)
    return row


def inspect_dataset(root: str | Path, progress: bool = False) -> pd.DataFrame:
    """The inspection table of every series under `root`, unusable files included as flagged rows."""
    from tqdm.auto import tqdm

    scan = scan_dataset(root)
    rows = [inspect_series(s, scan.overview.get(s.stem))
            for s in tqdm(scan.series, desc="inspecting", disable=not progress)]
    listed = {s.image for s in scan.series}
    for problem in scan.problems:  # stray files and masks without images
        if problem.path not in listed:
            rows.append({"series": problem.path.name, "training": False, "flags": str(problem)})
    for note in scan.notes:  # about the folder: a missing overview.csv, rows of it without files
        rows.append({"series": note.path.name, "flags": str(note)})
    table = pd.DataFrame(rows)
    table["flags"] = table["flags"].fillna("")
    return table


def flagged(table: pd.DataFrame) -> pd.DataFrame:
    """The rows that have a reason to look at them."""
    return table.loc[table["flags"] != "", ["series", "flags"]]


def dataset_summary(scan: Scan) -> pd.DataFrame:
    """Patients and series per subset and sequence: the first table to look at."""
    rows = []
    for s in scan.series:
        subset = (scan.overview.get(s.stem) or {}).get("subset", "unknown") or "unknown"
        rows.append({"subset": subset, "sequence": s.sequence, "patient": s.patient})
    df = pd.DataFrame(rows)
    table = df.pivot_table(index="subset", columns="sequence", values="patient", aggfunc="count", fill_value=0)
    table["series"] = table.sum(axis=1)
    table["patients"] = df.groupby("subset")["patient"].nunique()
    return table
