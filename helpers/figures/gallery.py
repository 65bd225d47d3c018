"""Which evaluated series to look at: the best, median and worst by mean Dice over the structures, and a
picture of each (reference, prediction, errors).

Used by notebook 06 (and its exercise 06.2, the worst case).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import SimpleITK as sitk

from helpers.core.atomic import save_figure
from helpers.core.errors import KitError
from helpers.data.labels import FOREGROUND


def mean_dice(table: pd.DataFrame) -> pd.Series:
    """Each series' mean Dice over the structures (a structure without a score is left out)."""
    return table[[f"dice_{n}" for n in FOREGROUND]].mean(axis=1)


def pick_cases(table: pd.DataFrame) -> dict[str, pd.Series]:
    """The best, median and worst series of an evaluation table (`evaluate.evaluate`) by mean Dice, each its
    row with `dice_mean` added; ties go to the series first in the table. Series without a Dice are left out."""
    scored = table.assign(dice_mean=mean_dice(table)).dropna(subset=["dice_mean"])
    if scored.empty:
        raise KitError("no evaluated series has a Dice score: nothing to rank")
    ranked = scored.sort_values("dice_mean", ascending=False, kind="stable")
    return {"best": scored.loc[scored["dice_mean"].idxmax()], "median": ranked.iloc[len(ranked) // 2],
            "worst": scored.loc[scored["dice_mean"].idxmin()]}


def show_cases(cases: dict[str, pd.Series], prep_dir: str | Path, eval_dir: str | Path,
               save: str | Path | None = None):
    """One row per case: reference, prediction and errors on the mid-sagittal slice of its original grid.

    `prep_dir` holds the manifest (where each series came from); `eval_dir` the predicted structure maps
    (`structures/<series>.mha`, as `evaluate.evaluate` writes them)."""
    from helpers.data.resample import read_manifest
    from helpers.evaluation.evaluate import reference_structures
    from helpers.figures.series import show_comparison

    records = {r["series"]: r for r in read_manifest(prep_dir)["series"]}
    fig, axes = plt.subplots(len(cases), 3, figsize=(11, 11 * len(cases) / 3), squeeze=False)
    for row, (name, case) in zip(axes, cases.items()):
        stem = case["series"]
        image, reference = reference_structures(records[stem])
        prediction = sitk.ReadImage(str(Path(eval_dir) / "structures" / f"{stem}.mha"))
        show_comparison(image, reference, prediction, f"{name}: {stem} (Dice {case['dice_mean']:.2f})", row)
    fig.tight_layout()
    save_figure(fig, save, dpi=100)
    return fig


def show_instances(rows: pd.DataFrame, prep_dir: str | Path, eval_dir: str | Path, count: int = 4,
                   save: str | Path | None = None):
    """The failure gallery: for each of the first `count` rows (`levels.worst_instances`), the sagittal slice
    through the most of that reference instance, cropped around it: the reference instance outlined in green, the
    predicted label it matched filled in orange, every other predicted label in grey. Titles say what happened."""
    import numpy as np

    from helpers.data.resample import read_manifest
    from helpers.data.spider import canonical_array, canonical_spacing, read_image, read_mask
    from helpers.evaluation.levels import describe
    from helpers.figures.series import display_range

    records = {r["series"]: r for r in read_manifest(prep_dir)["series"]}
    rows = rows.head(count)
    if rows.empty:
        raise KitError("no instances to show")
    fig, axes = plt.subplots(1, len(rows), figsize=(3.4 * len(rows), 4.2), squeeze=False)
    for ax, (_, row) in zip(axes[0], rows.iterrows()):
        record = records[row["series"]]
        image = read_image(record["source_image"])
        pixels = canonical_array(image).astype(np.float32)
        reference = canonical_array(read_mask(record["source_mask"], image))
        predicted = canonical_array(sitk.ReadImage(str(Path(eval_dir) / "predictions" / f"{row['series']}.mha")))
        instance = reference == row["label"]
        index = int(instance.sum(axis=(1, 2)).argmax())
        rr, cc = np.nonzero(instance[index])
        _, sy, sx = canonical_spacing(image)
        margin_r, margin_c = max(int(25 / sy), 3), max(int(25 / sx), 3)  # about 25 mm around the instance
        r0, r1 = max(rr.min() - margin_r, 0), min(rr.max() + margin_r + 1, pixels.shape[1])
        c0, c1 = max(cc.min() - margin_c, 0), min(cc.max() + margin_c + 1, pixels.shape[2])
        crop = (index, slice(r0, r1), slice(c0, c1))
        extent = (0, (c1 - c0) * sx, (r1 - r0) * sy, 0)
        low, high = display_range(pixels)
        ax.imshow(pixels[crop], cmap="gray", vmin=low, vmax=high, extent=extent, interpolation="nearest")
        others = (predicted[crop] > 0) & (predicted[crop] != row["match"])
        ax.imshow(np.ma.masked_equal(others.astype(float), 0), cmap="Greys", vmin=0, vmax=2, alpha=0.45,
                  extent=extent, interpolation="nearest")
        if row["match"]:
            ax.imshow(np.ma.masked_equal((predicted[crop] == row["match"]).astype(float), 0), cmap="Oranges",
                      vmin=0, vmax=1.4, alpha=0.55, extent=extent, interpolation="nearest")
        ys, xs = (np.arange(r1 - r0) + 0.5) * sy, (np.arange(c1 - c0) + 0.5) * sx  # voxel centres, mm
        ax.contour(xs, ys, instance[crop].astype(float), levels=[0.5], colors="lime", linewidths=1.2)
        ax.set_title(describe(row).replace(": ", ":\n", 1), fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("worst instances: reference outlined in green, its matched prediction in orange, other labels grey",
                 fontsize=9)
    fig.tight_layout()
    save_figure(fig, save, dpi=100)
    return fig
