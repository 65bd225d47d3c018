"""Every exercise answered right and wrong, on synthetic data and on the real samples.

The right answers here are computed another way than the kit's checker does (other files, plain SimpleITK and
pandas), the way a student could; a course run is made with the kit's commands, as notebooks 02-06 make it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk

from helpers.core.paths import run_layout
from helpers.course.exercises import context, exercises, is_right, solutions_text, verdict
from helpers.data.datalist import LeakageError, check_no_leakage, series_split_leaks, write_datalist
from helpers.data.resample import ResampleSettings, resample_dataset

from .conftest import kit

STRUCTURES = ("vertebra", "disc", "canal")


def make_run(data: Path, root: Path) -> Path:
    """What notebooks 03-06 leave in a run folder, made with the kit's functions and commands (tiny training)."""
    layout = run_layout(root)
    resample_dataset(data, layout.prep, ResampleSettings(min_inplane_mm=2.0), progress=False)  # the smoke grid
    resample_dataset(data, root / "prep_fixed_size", ResampleSettings(mode="fixed_size"), progress=False)
    write_datalist(layout.prep, layout.datalist)
    for args in (["train", "--datalist", str(layout.datalist), "--out", str(layout.train), "--profile", "smoke",
                  "--max-iterations", "2", "--val-every", "2"],
                 ["evaluate", "--run", str(layout.train)],
                 ["train", "--datalist", str(layout.datalist), "--out", str(layout.train.with_name("train_segresnet")),
                  "--profile", "smoke", "--model", "segresnet", "--max-iterations", "4", "--val-every", "2"]):
        run = kit(*args)  # the last: notebook 05's same-time CNN run (its length does not matter to 05.4)
        assert run.returncode == 0, run.stderr[-3000:]
    from helpers.data.dicom_series import (  # notebook 07: a DICOM scan, SEG, bundle
        demo_scan,
        read_scan,
        write_dicom_series,
    )

    write_dicom_series(sitk.DICOMOrient(read_scan(demo_scan(data)[0]).image, "PIR"), layout.your_scan / "dicom", "T2")
    for args in (["predict", str(layout.your_scan / "dicom"), "--run", str(layout.train), "--out",
                  str(layout.your_scan / "prediction.dcm")], ["export", "--run", str(layout.train), "--out",
                                                                str(layout.bundle)]):
        run = kit(*args)
        assert run.returncode == 0, run.stderr[-3000:]
    return root


def _pir(path: Path) -> np.ndarray:
    """(left-right, superior-inferior, anterior-posterior) array: sagittal slices along axis 0."""
    return sitk.GetArrayFromImage(sitk.DICOMOrient(sitk.ReadImage(str(path)), "PIR"))


def missed_or_merged_by_hand(data: Path, predictions: Path) -> int:
    """Reference vertebrae and discs whose best-overlapping predicted label has Dice below 0.1 (missed) or is also
    the best match of another reference instance but the canal (merged), counted from the masks themselves."""
    count = 0
    for path in sorted(predictions.glob("*.mha")):
        ref = sitk.GetArrayFromImage(sitk.ReadImage(str(data / "masks" / path.name)))
        pred = sitk.GetArrayFromImage(sitk.ReadImage(str(path)))
        best = {}
        for label in np.unique(ref):
            if label in (0, 100):
                continue
            inside = pred[ref == label]
            values, counts = np.unique(inside[inside > 0], return_counts=True)
            match = int(values[counts.argmax()]) if len(values) else 0
            dice = 2 * counts.max() / ((ref == label).sum() + (pred == match).sum()) if match else 0.0
            best[int(label)] = (match, dice)
        matches = [m for m, _ in best.values() if m]
        count += sum(1 for label, (m, d) in best.items()
                     if (label <= 25 or label >= 201) and (d < 0.1 or matches.count(m) > 1))
    return count


def student_answers(data: Path, root: Path, shown: str) -> dict:
    """Each exercise answered from files, as a student could, without the checker's code."""
    overview = pd.read_csv(data / "overview.csv")
    patients = overview.new_file_name.str.replace(".mha", "").str.split("_", n=1)
    first = patients.iloc[0][0]
    stems = sorted(p.stem for p in (data / "images").glob("*.mha"))
    spacing_lr, conventions = {}, []
    for stem in stems:
        image = sitk.DICOMOrient(sitk.ReadImage(str(data / "images" / f"{stem}.mha")), "PIR")
        spacing_lr.setdefault(stem.split("_", 1)[1], []).append(image.GetSpacing()[2])
        conventions.append(float(sitk.GetArrayViewFromImage(image).min()) < -500)
    medians = {seq: float(np.median(v)) for seq, v in spacing_lr.items()}
    mask = _pir(data / "masks" / f"{shown}.mha")
    prep = pd.read_csv(root / "prep" / "manifest.csv")
    fixed = pd.read_csv(root / "prep_fixed_size" / "manifest.csv")
    label_values = set()
    for path in (root / "prep" / "labels").glob("*.nii.gz"):
        label_values |= set(np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path)))).tolist())
    datalist = json.loads((root / "datalist.json").read_text())
    leaky = json.loads((root / "datalist.json").read_text())
    leaky["validation"].append(leaky["training"][0])
    try:
        check_no_leakage(leaky)
        raised = "nothing"
    except LeakageError as e:
        raised = type(e).__name__
    import torch

    train = root / "train"
    validations = [e for e in map(json.loads, (train / "metrics.jsonl").read_text().splitlines())
                   if e.get("kind") == "validation"]
    scores = pd.read_csv(train / "eval" / "test" / "metrics.csv")
    records = json.loads((root / "prep" / "manifest.json").read_text())["series"]
    return {
        "00.1": [p[1] for p in patients if p[0] == first],
        "00.2": overview[overview.subset == "validation"].new_file_name.str.split("_").str[0].nunique(),
        "00.3": "patient",
        "01.1": "T2",
        "01.2": len(set(np.unique(mask).tolist()) & set(range(1, 26))),
        "01.3": int((mask == 100).sum(axis=(1, 2)).argmax()),
        "02.1": min(medians, key=medians.get),
        "02.2": round(9 / min(medians.values())),
        "02.3": conventions.count(False),
        "03.1": [float(v) for v in prep.spacing[0].split("x")],  # the resampled grid's index order: (AP, SI, LR)
        "03.2": fixed.spacing.map(lambda s: tuple(round(float(v), 2) for v in s.split("x"))).nunique(),
        "03.3": sorted(label_values),
        "04.1": len({i["patient"] for i in datalist["test"]}),
        "04.2": series_split_leaks(records, seed=0)[0],
        "04.3": raised,
        "05.1": torch.load(train / "checkpoint_best.pt", weights_only=True)["iteration"],
        "05.2": validations[-1]["iteration"],
        "05.3": json.loads((train / "config.json").read_text())["patch_size"],
        "05.4": best_gain(train, root / "train_segresnet"),
        "06.1": max(STRUCTURES, key=lambda n: scores[f"hd95_{n}"].mean()),
        "06.2": scores.series[scores[[f"dice_{n}" for n in STRUCTURES]].mean(axis=1).idxmin()],
        "06.3": max(STRUCTURES, key=lambda n: scores[f"dice_{n}"].mean()),
        "06.4": missed_or_merged_by_hand(data, train / "eval" / "test" / "predictions"),
        "07.1": len(__import__("highdicom").seg.segread(str(root / "your_scan" / "prediction.dcm")).segment_numbers),
        "07.2": "models/model.pt",
        "07.3": json.loads((train / "config.json").read_text())["patch_size"],  # the kit's order is the network's
    }


def best_gain(unetr: Path, cnn: Path) -> str:
    """The structure whose best validation Dice the CNN raised most over UNETR's, read from both metrics.jsonl."""
    def best(run: Path) -> dict:
        rows = [e for e in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                if e.get("kind") == "validation" and "dice_mean" in e]
        return {s: max(e[f"dice_{s}"] for e in rows) for s in STRUCTURES}

    a, b = best(unetr), best(cnn)
    return max(STRUCTURES, key=lambda s: b[s] - a[s])


def wrong(answer, exercise_id: str, mask_canal: np.ndarray):
    """A plausible wrong answer of the same kind."""
    if exercise_id == "01.3":  # the slice with the least canal
        return int(mask_canal.argmin())
    if exercise_id in ("00.3", "01.1", "04.3", "02.1", "05.4", "06.1", "06.2", "06.3", "07.2"):
        return {"patient": "series", "T2": "t1", "LeakageError": "ValueError"}.get(answer, f"{answer}_x")
    if exercise_id == "00.1":
        return answer[:-1] if len(answer) > 1 else [*answer, "t1" if "t1" not in answer else "t2"]
    if exercise_id == "03.3":
        return [*answer, 150]  # what linear interpolation between canal (100) and disc (201) could make
    if isinstance(answer, list):
        return [v * 2 for v in answer]
    return answer + 3


def answer_all(data: Path, root: Path, shown: str) -> None:
    answers = student_answers(data, root, shown)
    assert set(answers) == set(exercises()), "every exercise has an answer in this test"
    ctx = context(data, root, labels_series=shown, slider_series=shown)
    canal = (_pir(data / "masks" / f"{shown}.mha") == 100).sum(axis=(1, 2))
    for exercise_id, answer in answers.items():
        assert is_right(exercise_id, answer, ctx), (exercise_id, answer, exercises()[exercise_id].expected(ctx))
        assert verdict(exercise_id, answer, ctx).startswith(f"{exercise_id} right")
        bad = wrong(answer, exercise_id, canal)
        assert not is_right(exercise_id, bad, ctx), (exercise_id, bad)
        assert "not yet" in verdict(exercise_id, bad, ctx) and "Hint:" in verdict(exercise_id, bad, ctx)
        assert "not answered yet" in verdict(exercise_id, None, ctx)
    text = solutions_text(ctx)
    assert all(f"## {i}" in text for i in answers) and "not computable" not in text


@pytest.mark.slow
def test_every_exercise_on_synthetic_data(small_dataset, tmp_path):
    root = make_run(small_dataset, tmp_path / "run")
    answer_all(small_dataset, root, shown=sorted(p.stem for p in (small_dataset / "masks").glob("*.mha"))[0])


@pytest.mark.slow
def test_every_exercise_on_real_samples(real_samples, tmp_path):
    root = make_run(real_samples, tmp_path / "run")
    answer_all(real_samples, root, shown="7_t2_SPACE")


def test_checks_say_when_the_run_is_missing(small_dataset, tmp_path, capsys):
    from helpers.course.exercises import Checker

    Checker(small_dataset, tmp_path / "no-run").check("05.1", 10)
    assert "cannot be checked yet" in capsys.readouterr().out
    Checker(small_dataset, tmp_path / "no-run").check("00.3", "patient")
    assert "00.3 right" in capsys.readouterr().out


def test_solutions_command_prints_answers(small_dataset, tmp_path):
    """`python -m helpers solutions` as a process: the real entry point."""
    run = subprocess.run([sys.executable, "-m", "helpers", "solutions", "--notebook", "00", "--data-dir",
                          str(small_dataset), "--run", str(tmp_path)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "## 00.1" in run.stdout and "answer on this data" in run.stdout and "## 01.1" not in run.stdout
