"""The course's exercises, three or four per notebook: each answer is computed from the student's own data and run.

Files that a notebook writes (inspection table, manifests, datalist, training metrics, evaluation table) are
read where they exist, so a check costs little and agrees with what the student saw.

Used by every notebook (its closing exercise cell), through helpers.course.exercises."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from helpers.core.paths import RunFiles
from helpers.course.exercise_rules import Context, Exercise, close_to, exactly, same_set


def _scan(ctx: Context):
    from helpers.data.spider import scan_dataset

    return scan_dataset(ctx.data)


def _need(path: Path, made_by: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist yet ({made_by} writes it)")
    return path


# ---- 00 · data ------------------------------------------------------------------------------------------------

def first_patient_sequences(ctx: Context) -> list[str]:
    scan = _scan(ctx)
    stems = list(scan.overview) or [s.stem for s in scan.series]
    from helpers.data.spider import parse_stem

    first = parse_stem(stems[0])[0]
    return sorted(s.sequence for s in scan.series if s.patient == first)


def official_validation_patients(ctx: Context) -> int:
    scan = _scan(ctx)
    from helpers.data.spider import parse_stem

    return len({parse_stem(stem)[0] for stem, row in scan.overview.items()
                if (row.get("subset") or "").strip().lower() == "validation"})


# ---- 01 · display ---------------------------------------------------------------------------------------------

def _series(ctx: Context, key: str):
    scan = _scan(ctx)
    stem = ctx.get(key)
    if stem is None:  # the notebook's default: the first patient with both T1 and T2, else the first patient
        by_patient: dict[int, dict] = {}
        for s in scan.complete:
            by_patient.setdefault(s.patient, {})[s.sequence] = s
        pid = next((p for p, seqs in by_patient.items() if {"t1", "t2"} <= set(seqs)), next(iter(by_patient)))
        shown = list(by_patient[pid].values())
        return shown[0] if key == "labels_series" else shown[-1]
    return next(s for s in scan.complete if s.stem == stem)


def vertebrae_in_mask(ctx: Context) -> int:
    import SimpleITK as sitk

    from helpers.data.labels import VERTEBRA_LABELS
    from helpers.data.spider import read_mask

    mask = read_mask(_series(ctx, "labels_series").mask)
    values = set(np.unique(sitk.GetArrayViewFromImage(mask)).tolist())
    return len(values & set(VERTEBRA_LABELS))


def _canal_per_slice(ctx: Context) -> np.ndarray:
    from helpers.data.spider import read_series
    from helpers.figures.series import SeriesView

    view = SeriesView(*read_series(_series(ctx, "slider_series")))
    return (view.mask == 3).sum(axis=(1, 2))


def widest_canal_slice(ctx: Context) -> int:
    return int(np.argmax(_canal_per_slice(ctx)))


def _accept_canal_slice(answer, ctx: Context) -> bool:
    """Any slice holding at least 90% of the largest canal area is right (neighbours can be nearly equal)."""
    canal = _canal_per_slice(ctx)
    try:
        index = int(answer)
    except (TypeError, ValueError):
        return False
    return index == float(answer) and 0 <= index < len(canal) and canal[index] >= 0.9 * canal.max() > 0


# ---- 02 · inspection ------------------------------------------------------------------------------------------

def _inspection(ctx: Context) -> pd.DataFrame:
    path = ctx.run.tables / "inspection.csv"
    if path.is_file():
        return pd.read_csv(path)
    from helpers.data.inspection import inspect_dataset

    return inspect_dataset(ctx.data)


def thinnest_slices(ctx: Context) -> str:
    table = _inspection(ctx).dropna(subset=["spacing LR mm"])
    return str(table.groupby("sequence")["spacing LR mm"].median().idxmin())


def disc_voxels(ctx: Context) -> float:
    table = _inspection(ctx).dropna(subset=["spacing LR mm"])
    return 9.0 / float(table.groupby("sequence")["spacing LR mm"].median().min())


def squeezed_by_ct_window(ctx: Context) -> int:
    from helpers.data.inspection import intensity_convention

    table = _inspection(ctx).dropna(subset=["convention"])
    mapped = intensity_convention(-1000, 3096, True)
    return int((table["convention"] != mapped).sum())


# ---- 03 · resampling ------------------------------------------------------------------------------------------

def _manifest(ctx: Context, folder: str = "prep") -> dict:
    path = _need((ctx.run.prep if folder == "prep" else ctx.run.prep_fixed_size) / "manifest.json", "notebook 03")
    return json.loads(path.read_text())


def chosen_spacing(ctx: Context) -> list[float]:
    from helpers.data.resample import ResampleSettings

    return [round(float(v), 3) for v in ResampleSettings.from_record(_manifest(ctx)["settings"]).spacing]


def fixed_size_spacings(ctx: Context) -> int:
    records = _manifest(ctx, "prep_fixed_size")["series"]
    return len({tuple(round(v, 2) for v in r["resampled"]["spacing"]) for r in records})


def resampled_label_values(ctx: Context) -> list[int]:
    return sorted({v for r in _manifest(ctx)["series"] for v in r["labels_present"]})


# ---- 04 · datalist --------------------------------------------------------------------------------------------

def _datalist(ctx: Context) -> dict:
    return json.loads(_need(ctx.run.datalist, "notebook 04").read_text())


def test_patients(ctx: Context) -> int:
    return len({item["patient"] for item in _datalist(ctx)["test"]})


def series_split_leaked(ctx: Context) -> int:
    from helpers.data.datalist import series_split_leaks

    return series_split_leaks(_manifest(ctx)["series"], seed=int(ctx.get("seed", 0)))[0]


def leakage_error(ctx: Context) -> str:
    from helpers.data.datalist import LeakageError

    return LeakageError.__name__


# ---- 05 · training (read from the run's own files, whatever the recipe) ---------------------------------------

def _metrics(ctx: Context) -> list[dict]:
    path = _need(RunFiles(ctx.run.train).metrics, "notebook 05")
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by an interruption
    return [e for e in entries if "dice_mean" in e and e.get("dice_mean") is not None]


def best_iteration(ctx: Context) -> int:
    validations = _metrics(ctx)
    if not validations:
        raise ValueError("no validation in metrics.jsonl yet")
    best = max(e["dice_mean"] for e in validations)
    return int(next(e["iteration"] for e in validations if e["dice_mean"] == best))


def resume_iteration(ctx: Context) -> int:
    path = _need(RunFiles(ctx.run.train).checkpoint("last"), "notebook 05")
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["iteration"])


def patch_size(ctx: Context) -> list[int]:
    from helpers.training.run_record import upgraded

    config = upgraded(json.loads(_need(RunFiles(ctx.run.train).config, "notebook 05").read_text()))
    return [int(v) for v in config["patch_size"]]


def structure_gained_most(ctx: Context) -> str:
    """Exercise 05.4: the structure whose best validation Dice the CNN of the same-time run raised most."""
    from helpers.course.networks import comparison_dir
    from helpers.course.networks import structure_gained_most as gained

    other = comparison_dir(ctx.run.train, ctx.get("compare_with", "segresnet"))
    _need(RunFiles(other).metrics, "notebook 05's last section, with compare_networks = True")
    return gained(_need(ctx.run.train, "notebook 05"), other)


# ---- 06 · evaluation ------------------------------------------------------------------------------------------

def _scores(ctx: Context) -> pd.DataFrame:
    part = ctx.get("part", "test")
    return pd.read_csv(_need(RunFiles(ctx.run.train).evaluation(part).metrics, "notebook 06"))


def _structure_means(ctx: Context, metric: str) -> pd.Series:
    from helpers.data.labels import FOREGROUND

    table = _scores(ctx)
    return pd.Series({n: table[f"{metric}_{n}"].mean() for n in FOREGROUND if f"{metric}_{n}" in table})


def largest_hd95(ctx: Context) -> str:
    return str(_structure_means(ctx, "hd95").idxmax())


def best_dice_structure(ctx: Context) -> str:
    return str(_structure_means(ctx, "dice").idxmax())


def worst_case(ctx: Context) -> str:
    from helpers.figures.gallery import pick_cases

    return str(pick_cases(_scores(ctx))["worst"]["series"])


def missed_or_merged(ctx: Context) -> int:
    part = ctx.get("part", "test")
    rows = pd.read_csv(_need(RunFiles(ctx.run.train).evaluation(part).instances, "notebook 06"))
    return int((rows["structure"].isin(["vertebra", "disc"]) & rows["status"].isin(["missed", "merged"])).sum())


def seg_segments(ctx: Context) -> int:
    import pydicom

    path = _need(ctx.run.your_scan / "prediction.dcm", "notebook 07")
    return len(pydicom.dcmread(path, stop_before_pixels=True).SegmentSequence)


def bundle_weights(ctx: Context) -> str:
    _need(ctx.run.bundle / "configs" / "inference.json", "notebook 07")
    return next(str(p.relative_to(ctx.run.bundle)) for p in sorted(ctx.run.bundle.rglob("*.pt")))


def bundle_input_shape(ctx: Context) -> list[int]:
    meta = json.loads(_need(ctx.run.bundle / "configs" / "metadata.json", "notebook 07").read_text())
    return list(meta["network_data_format"]["inputs"]["image"]["spatial_shape"])


def _is_t2(answer, ctx: Context) -> bool:
    return _norm_seq(answer) in ("t2", "t2_space", "t2space")


def _norm_seq(answer) -> str:
    return str(answer).strip().lower().replace("-", "_").replace(" ", "")


EXERCISES: list[Exercise] = [
    Exercise("00.1", "Open overview.csv: which sequences does its first patient have? (a list, e.g. ['t1'])",
             first_patient_sequences, matches=same_set,
             hint="the patient number is the part of `new_file_name` before the first underscore; "
                  "collect the sequence of every row with that number.",
             solution="""
from helpers.data.spider import scan_dataset, parse_stem
scan = scan_dataset(data)
first = parse_stem(next(iter(scan.overview)))[0]
sorted(s.sequence for s in scan.series if s.patient == first)"""),
    Exercise("00.2", "How many patients are in SPIDER's official validation subset in this dataset? (a number)",
             official_validation_patients, matches=exactly,
             hint="count distinct patients, not rows: look at the `subset` column of overview.csv.",
             solution="""
import pandas as pd
ov = pd.read_csv(data / "overview.csv")
ov[ov.subset == "validation"].new_file_name.str.split("_").str[0].nunique()"""),
    Exercise("00.3", "Two series of one patient can carry the same mask. Must a train/validation split keep "
                     "'patient' or 'series' together?",
             lambda ctx: "patient",
             hint="if a T1 trains and the T2 of the same spine validates, what has the network already seen?",
             solution="""
By patient: the series of one patient show the same anatomy (often the same mask), so a series split
lets the network be graded on a spine it trained on. Notebook 04 measures how often that happens."""),
    Exercise("01.1", "On which sequence, 't1' or 't2', is the spinal canal bright?", lambda ctx: "t2",
             accept=_is_t2,
             hint="the canal holds fluid (cerebrospinal fluid); which weighting makes fluid bright?",
             solution="""
T2 (and T2 SPACE): fluid is bright on T2, so the canal stands out against the dark bone and
ligaments around it; a network finds its edges from contrast alone."""),
    Exercise("01.2", "How many vertebrae (values 1-25) are labelled in the mask of section 2? (a number)",
             vertebrae_in_mask, matches=exactly,
             hint="count the rows of the label table whose structure is 'vertebra'.",
             solution="""
import numpy as np, SimpleITK as sitk
_, mask = read_series(next(iter(series.values())))
values = np.unique(sitk.GetArrayViewFromImage(mask))
int(((values >= 1) & (values <= 25)).sum())"""),
    Exercise("01.3", "Drag the slider to the slice with the most spinal canal in it: what is the slider's value?",
             widest_canal_slice, accept=_accept_canal_slice,
             hint="the canal is widest in the middle of the spine (mid-sagittal); its blue overlay is largest "
                  "there. Any slice with at least 90% of the largest canal area counts.",
             solution="""
view = views[-1]                        # the series under the slider
int((view.mask == 3).sum(axis=(1, 2)).argmax())   # 3 = canal"""),
    Exercise("02.1", "Which sequence has the thinnest slices (smallest median left-right spacing)?",
             thinnest_slices,
             hint="group the table by `sequence` and take the median of `spacing LR mm`.",
             solution="""
table.groupby("sequence")["spacing LR mm"].median().idxmin()"""),
    Exercise("02.2", "On that sequence, how many slices does a 9 mm disc span (9 mm / its median slice thickness)?",
             disc_voxels, matches=close_to(rel=0.05, abs_=0.5),
             hint="divide 9 by the median `spacing LR mm` of that sequence; a rounded answer is fine.",
             solution="""
9 / table.groupby("sequence")["spacing LR mm"].median().min()"""),
    Exercise("02.3", "How many series here are NOT in the mapped [-1000, 3096] convention, so that a fixed CT window "
                     "[-1000, 3096] -> [0, 1] squeezes them into a narrow band?",
             squeezed_by_ct_window, matches=exactly,
             hint="look at the `convention` column: every row that is not 'mapped [-1000, 3096]'.",
             solution="""
(table["convention"] != "mapped [-1000, 3096]").sum()"""),
    Exercise("03.1", "Which target spacing did the kit choose, in mm (anterior-posterior, superior-inferior, "
                     "left-right: the kit's axis order)?",
             chosen_spacing, matches=close_to(rel=0.01, abs_=0.01),
             hint="it is printed in the `chosen` row of section 1, and stored in prep/manifest.json "
                  "under settings.spacing.",
             solution="""
read_manifest(layout.prep)["settings"]["spacing"]"""),
    Exercise("03.2", "In the predecessor's fixed-size grid (prep_fixed_size, made in section 5), how many different "
                     "voxel spacings (rounded to 0.01 mm) do the series get?",
             fixed_size_spacings, matches=exactly,
             hint="read prep_fixed_size/manifest.csv and count the distinct values of its `spacing` column: one "
                  "fixed size means a different spacing for nearly every different input grid.",
             solution="""
import pandas as pd
pd.read_csv(layout.prep_fixed_size / "manifest.csv")["spacing"].nunique()
# (the checker rounds each spacing to 0.01 mm; the CSV stores 0.001 mm)"""),
    Exercise("03.3", "Which label values do the kit's resampled masks hold (all series together)? A mask resampled "
                     "with linear interpolation would hold many more.",
             resampled_label_values, matches=same_set,
             hint="each record in prep/manifest.json lists `labels_present`; take the union.",
             solution="""
sorted({v for r in read_manifest(layout.prep)["series"] for v in r["labels_present"]})
# 0 background, 1 vertebra, 2 disc, 3 canal: per-label voting never invents a value"""),
    Exercise("04.1", "How many patients are in the test part of datalist.json?", test_patients, matches=exactly,
             hint="count distinct `patient` values in datalist['test'] (split_table shows it too).",
             solution="""
len({item["patient"] for item in datalist["test"]})"""),
    Exercise("04.2", "In section 3, a random split by series: how many validation patients also had series in "
                     "training?",
             series_split_leaked, matches=exactly,
             hint="it is the first number printed in section 3.",
             solution="""
series_split_leaks(read_manifest(layout.prep)["series"], seed=seed)[0]"""),
    Exercise("04.3", "Move one series from training to validation in a copy of the datalist and call "
                     "check_no_leakage on it: which exception does it raise? (its class name)",
             leakage_error,
             hint="section 4 catches it: look at its `except` line.",
             solution="""
leaky = json.loads(layout.datalist.read_text())
leaky["validation"].append(leaky["training"].pop(0))
try:
    check_no_leakage(leaky)
except Exception as e:
    type(e).__name__"""),
    Exercise("05.1", "At which iteration did validation reach its best mean Dice (the one checkpoint_best.pt "
                     "holds)?",
             best_iteration, matches=exactly,
             hint="read the validation rows of outputs/train/metrics.jsonl (or the curves): the iteration with the "
                  "highest dice_mean, the first one if two tie.",
             solution="""
entries = [e for e in read_metrics(layout.train) if "dice_mean" in e]
max(entries, key=lambda e: e["dice_mean"])["iteration"]"""),
    Exercise("05.2", "Stop the training cell and run it again: from which iteration does it continue (the one "
                     "checkpoint_last.pt holds)?",
             resume_iteration, matches=exactly,
             hint="checkpoints are written at each validation; the last validation row of metrics.jsonl has "
                  "the iteration.",
             solution="""
import torch
torch.load(layout.train / "checkpoint_last.pt", weights_only=True)["iteration"]"""),
    Exercise("05.3", "Open config.json of this run: which patch size (three numbers, in voxels) must a prediction "
                     "use?",
             patch_size, matches=close_to(rel=0, abs_=0),
             hint="the key is `patch_size` in outputs/train/config.json.",
             solution="""
json.loads((layout.train / "config.json").read_text())["patch_size"]"""),
    Exercise("05.4", "In the same training time, on which structure did the CNN gain most over UNETR (its best "
                     "validation Dice minus UNETR's): 'vertebra', 'disc' or 'canal'?",
             structure_gained_most,
             hint="compare the two rows of the table in the last section (best Dice per structure), or the three "
                  "panels of the figure: the largest difference of the CNN's best over UNETR's.",
             solution="""
from helpers.course.networks import best_dice
unetr, cnn = best_dice(layout.train), best_dice(comparison_dir(layout.train, compare_with))
max(["vertebra", "disc", "canal"], key=lambda s: cnn[s] - unetr[s])"""),
    Exercise("06.1", "Which structure has the largest mean HD95 on this part ('vertebra', 'disc' or 'canal')?",
             largest_hd95,
             hint="average the hd95_* columns of the table of section 1 over series.",
             solution="""
table[[f"hd95_{n}" for n in FOREGROUND]].mean().idxmax().removeprefix("hd95_")"""),
    Exercise("06.2", "Which series is the worst case (lowest mean Dice over the three structures)?",
             worst_case,
             hint="section 4 shows it in its last row; the name is the `series` column, e.g. '12_t2'.",
             solution="""
cases["worst"]["series"]    # pick_cases: the lowest mean of dice_vertebra, dice_disc, dice_canal"""),
    Exercise("06.3", "Which structure has the highest mean Dice on this part?", best_dice_structure,
             hint="average the dice_* columns of the table over series (section 5 shows the means).",
             solution="""
table[[f"dice_{n}" for n in FOREGROUND]].mean().idxmax().removeprefix("dice_")"""),
    Exercise("06.4", "How many reference vertebrae and discs of this part were missed or merged (each instance "
                     "counted once, over all series)?", missed_or_merged, matches=exactly,
             hint="section 6's level table: add the missed and merged columns of the vertebra and disc rows.",
             solution="""
levels[levels.structure.isin(["vertebra", "disc"])][["missed", "merged"]].sum().sum()"""),
    Exercise("07.1", "How many segments does the DICOM SEG of your scan hold?", seg_segments, matches=exactly,
             hint="one segment per vertebra, per disc and the canal: count the rows of the table in section 4, "
                  "or read the SegmentSequence of your_scan/prediction.dcm with pydicom.",
             solution="""
import pydicom
len(pydicom.dcmread(layout.your_scan / "prediction.dcm", stop_before_pixels=True).SegmentSequence)"""),
    Exercise("07.2", "Which file of the bundle holds the network's weights (its path inside the bundle)?",
             bundle_weights,
             hint="look at the listing of section 5, or at the `initialize` entry of configs/inference.json.",
             solution="""
sorted(str(p.relative_to(layout.bundle)) for p in layout.bundle.rglob("*.pt"))[0]"""),
    Exercise("07.3", "Which input size (three numbers, in voxels) does the bundle's network take?",
             bundle_input_shape, matches=close_to(rel=0, abs_=0),
             hint="configs/metadata.json, network_data_format > inputs > image > spatial_shape: the training patch "
                  "(patch_size in config.json: the kit's order is the network's).",
             solution="""
json.loads((layout.bundle / "configs" / "metadata.json").read_text())["network_data_format"]["inputs"]["image"][
    "spatial_shape"]"""),
]
