"""Which evaluated series to look at: the best, median and worst by mean Dice over the structures, and a
picture of each (reference, prediction, errors).

Used by notebook 06 (and its exercise 06.2, the worst case).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import SimpleITK as sitk

from .errors import KitError
from .labels import FOREGROUND


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
    from .display import show_comparison
    from .evaluate import reference_structures
    from .resample import read_manifest

    records = {r["series"]: r for r in read_manifest(prep_dir)["series"]}
    fig, axes = plt.subplots(len(cases), 3, figsize=(11, 11 * len(cases) / 3), squeeze=False)
    for row, (name, case) in zip(axes, cases.items()):
        stem = case["series"]
        image, reference = reference_structures(records[stem])
        prediction = sitk.ReadImage(str(Path(eval_dir) / "structures" / f"{stem}.mha"))
        show_comparison(image, reference, prediction, f"{name}: {stem} (Dice {case['dice_mean']:.2f})", row)
    fig.tight_layout()
    if save:
        Path(save).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(save, dpi=100)
    return fig
