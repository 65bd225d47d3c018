"""Figures of the data before training: voxel spacings and intensity ranges of every series; one series on
the kit's grid and on the predecessor's fixed size; intensities under the predecessor's CT window and the kit's
per-image normalisation.

Used by notebooks 02 (spacings and intensity ranges) and 03 (grids and intensities).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import SimpleITK as sitk

from helpers.core.atomic import save_figure
from helpers.data.axes import orientation
from helpers.data.predecessor import CT_WINDOW, ct_window
from helpers.data.resample import read_manifest
from helpers.data.spider import Scan, read_series
from helpers.figures.series import SeriesView

MAPPED_BELOW = -500.0  # a 0.5th percentile below this: SPIDER's mapped convention [-1000, 3096]


def plot_spacing_intensity(table: pd.DataFrame, save: str | Path | None = None):
    """Slice thickness against in-plane spacing per sequence, and each series' intensity range per convention
    (from the inspection table, `inspection.inspect_dataset`)."""
    ok = table.dropna(subset=["spacing LR mm"])
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for seq, group in ok.groupby("sequence"):
        axes[0].scatter(group["spacing AP mm"], group["spacing LR mm"], label=seq, alpha=0.7)
    axes[0].set(xlabel="in-plane spacing (mm)", ylabel="slice thickness, left-right (mm)", title="voxel spacing")
    axes[0].legend()
    for i, (conv, group) in enumerate(ok.groupby("convention")):
        axes[1].hlines(range(i * 100, i * 100 + len(group)), group["min"], group["max"], colors=f"C{i}", label=conv)
    axes[1].set(xlabel="intensity", yticks=[], title="intensity range per series")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, save)
    return fig


def plot_grids(scan: Scan, prep_dir: str | Path, fixed_dir: str | Path, save: str | Path | None = None):
    """The first resampled series three ways: the original in millimetres, the kit's grid (by spacing), and
    the predecessor's fixed size drawn as the network sees it, one square per voxel."""
    prep_dir, fixed_dir = Path(prep_dir), Path(fixed_dir)
    record = read_manifest(prep_dir)["series"][0]
    image, mask = read_series(next(s for s in scan.complete if s.stem == record["series"]))
    views = [SeriesView(image, mask, f"original {orientation(image)}")]
    for folder, title in ((prep_dir, "kit: by spacing"), (fixed_dir, "predecessor: fixed size")):
        views.append(SeriesView(sitk.ReadImage(str(folder / record["image"])),
                                sitk.ReadImage(str(folder / record["label"])), title, structures=True))
    fig, axes = plt.subplots(1, 3, figsize=(12, 4.5))
    for ax, view, physical in zip(axes, views, (True, False, False)):
        view.draw(ax, physical=physical)
    fig.suptitle(f"{record['series']}: the same anatomy, three grids")
    fig.tight_layout()
    save_figure(fig, save)
    return fig


def convention_examples(records: list[dict]) -> dict[str, str | None]:
    """A resampled series in each of SPIDER's two conventions, by the 0.5th percentile its manifest record
    keeps: about -1000 when mapped into [-1000, 3096], 0 or more for raw values; None where there is none."""
    lows = {r["series"]: r["normalisation"]["value_low"] for r in records}
    return {"mapped": next((k for k, low in lows.items() if low < MAPPED_BELOW), None),
            "raw": next((k for k, low in lows.items() if low >= 0), None)}


def plot_intensities(scan: Scan, prep_dir: str | Path, save: str | Path | None = None):
    """Histograms of a mapped and a raw series: stored values, after the predecessor's CT window
    (`predecessor.ct_window`), and after the kit's per-image normalisation (the resampled image)."""
    prep_dir = Path(prep_dir)
    records = {r["series"]: r for r in read_manifest(prep_dir)["series"]}
    by_stem = {s.stem: s for s in scan.complete}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    for stem, colour in zip(convention_examples(list(records.values())).values(), ("C0", "C1")):
        if stem is None:
            continue
        values = sitk.GetArrayFromImage(read_series(by_stem[stem])[0]).ravel()
        after = sitk.GetArrayFromImage(sitk.ReadImage(str(prep_dir / records[stem]["image"]))).ravel()
        axes[0].hist(values, bins=100, color=colour, alpha=0.6, label=stem)
        axes[1].hist(ct_window(values), bins=100, range=(0, 1), color=colour, alpha=0.6)
        axes[2].hist(after, bins=100, range=(0, 1), color=colour, alpha=0.6)
    predecessor_title = f"predecessor: CT window [{CT_WINDOW[0]:g}, {CT_WINDOW[1]:g}] -> [0, 1]"
    for ax, title in zip(axes, ("stored values", predecessor_title, "kit: per-image percentiles")):
        ax.set(title=title, yticks=[])
    axes[0].legend()
    fig.tight_layout()
    save_figure(fig, save)
    return fig


