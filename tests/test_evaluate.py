"""Metrics on hand-made cases, predictions on the original grid, the report, and predict on real data."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
import torch

from helpers.core.errors import DataError
from helpers.course.report import build_report
from helpers.data.datalist import write_datalist
from helpers.data.resample import resample_dataset
from helpers.data.spider import read_series, scan_dataset
from helpers.evaluation.dice import joint_counts, predecessor_score
from helpers.evaluation.distances import BorderSet, run_work
from helpers.evaluation.evaluate import evaluate, semantic_row, semantic_work, to_spider_values
from helpers.evaluation.stats import mean_sd
from helpers.inference.predict import Predictor

from .conftest import kit, tree_digest


def structure_metrics(reference, prediction, spacing_zyx):
    """Dice, HD95 and ASSD per structure as `score_series` computes them: `semantic_work`'s distances (borders by
    face connectivity), `semantic_row`'s figures."""
    work = semantic_work(BorderSet(reference, connectivity=1), BorderSet(prediction, connectivity=1), spacing_zyx)
    return semantic_row(joint_counts(reference, prediction, 4), run_work(work)[0])


def test_identical_masks_score_perfectly():
    ref = np.zeros((20, 30, 30), np.uint8)
    ref[5:15, 10:20, 10:20] = 1
    ref[2:4, 5:25, 5:25] = 2
    ref[16:18, 5:8, 5:8] = 3
    m = structure_metrics(ref, ref.copy(), (1.0, 1.0, 1.0))
    for name in ("vertebra", "disc", "canal"):
        assert m[f"dice_{name}"] == 1 and m[f"hd95_{name}"] == 0 and m[f"assd_{name}"] == 0


def test_shifted_box_has_the_known_distance():
    ref = np.zeros((40, 40, 40), np.uint8)
    ref[10:20, 10:20, 10:20] = 1
    pred = np.roll(ref, 3, axis=2)  # 3 voxels along x, spacing 2 mm there -> 6 mm
    m = structure_metrics(ref, pred, (1.0, 1.0, 2.0))
    assert m["hd95_vertebra"] == pytest.approx(6.0)
    assert m["dice_vertebra"] == pytest.approx(0.7)
    assert np.isnan(m["dice_disc"]) and np.isnan(m["hd95_disc"])


def test_structure_metrics_equal_monai(small_dataset):
    """The kit's fast borders and distances give MONAI's HD95 and ASSD on a shifted, fragmented prediction."""
    import torch
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    from helpers.data.labels import to_structures

    rng = np.random.default_rng(1)
    for series in scan_dataset(small_dataset).complete[:3]:
        _, mask = read_series(series)
        ref = to_structures(sitk.GetArrayFromImage(mask))
        pred = np.roll(ref, (1, -2), (0, 2))
        noise = rng.random(ref.shape) < 0.01
        pred[noise] = rng.integers(0, 4, noise.sum())
        spacing = tuple(reversed(mask.GetSpacing()))
        m = structure_metrics(ref, pred, spacing)
        for index, name in ((1, "vertebra"), (2, "disc"), (3, "canal")):
            a = torch.from_numpy(np.stack([pred != index, pred == index])[None])
            b = torch.from_numpy(np.stack([ref != index, ref == index])[None])
            hd95 = float(compute_hausdorff_distance(a, b, percentile=95, spacing=spacing)[0, 0])
            assd = float(compute_average_surface_distance(a, b, symmetric=True, spacing=spacing)[0, 0])
            assert m[f"hd95_{name}"] == pytest.approx(hd95, rel=1e-5)
            assert m[f"assd_{name}"] == pytest.approx(assd, rel=1e-5)


def test_predecessor_score_counts_background():
    ref = np.zeros((10, 10, 10), np.int16)
    ref[2:5] = 1
    pred = ref.copy()
    pred[2:5] = 2  # right structure, wrong number: every instance class scores 0
    assert predecessor_score(ref, pred) == pytest.approx(np.mean([1.0, 0.0, 0.0]))


def test_spider_values_numbered_bottom_up(small_dataset):
    for s in scan_dataset(small_dataset).complete[:4]:
        _, mask = read_series(s)
        from helpers.data.labels import to_structures
        structures = sitk.GetImageFromArray(to_structures(sitk.GetArrayFromImage(mask)))
        structures.CopyInformation(mask)
        rebuilt = sitk.GetArrayFromImage(to_spider_values(structures))
        original = sitk.GetArrayFromImage(mask)
        assert np.array_equal(rebuilt == 100, original == 100)
        labelled = (original >= 1) & (original <= 25)
        assert (rebuilt[labelled] == original[labelled]).mean() > 0.95, s.stem


def test_predictions_land_on_the_original_grid_and_report_matches_csv(trained, small_dataset, tmp_path):
    run = trained / "run"
    result = evaluate(run, part="test", progress=False)
    table = result.table
    preds = run / "eval" / "test" / "predictions"
    orientations = set()
    for row in table.itertuples():
        series = next(s for s in scan_dataset(small_dataset).complete if s.stem == row.series)
        image, _ = read_series(series)
        for pred_path in (preds / f"{row.series}.mha", run / "eval" / "test" / "structures" / f"{row.series}.mha"):
            pred = sitk.ReadImage(str(pred_path))
            assert pred.GetSize() == image.GetSize() and np.allclose(pred.GetOrigin(), image.GetOrigin())
            assert np.allclose(pred.GetDirection(), image.GetDirection())
        orientations.add(sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(image.GetDirection()))
    assert "PIR" in orientations  # T2 SPACE in the test part: predictions go back onto a PIR grid too
    report = build_report(run, tmp_path / "report")
    text = report.read_text()
    csv = pd.read_csv(run / "eval" / "test" / "metrics.csv")
    for name in ("vertebra", "disc", "canal"):
        assert f"{csv[f'dice_{name}'].mean():.3f} ± {csv[f'dice_{name}'].std(ddof=1):.3f}" in text  # stats.summarise
    assert "Synthetic data" in text.splitlines()[2] and "0.7154" in text and "0.93 ± 0.05" in text
    assert all(f"### View {n}" in text for n in (1, 2, 3)) and "**Which number to quote.**" in text
    challenge = json.loads((run / "eval" / "test" / "challenge.json").read_text())
    assert f"| overall | {mean_sd(challenge['summary']['OveralDiceScore'])} |" in text
    scored = kit("score", "--reference", small_dataset / "masks", "--prediction", preds, "--json",
                 tmp_path / "score.json")
    assert scored.returncode == 0, scored.stderr[-2000:]  # evaluate's predictions, scored by the command line
    assert json.loads((tmp_path / "score.json").read_text())["summary"] == challenge["summary"]
    assert (tmp_path / "report" / "index.html").read_text().count("<table>") >= 4
    for figure in ("curves", "boxplots", "cases", "instances"):  # drawn by helpers: a report from the CLI has them
        assert (tmp_path / "report" / "figures" / f"{figure}.png").is_file() and f"(figures/{figure}.png)" in text
    instances = pd.read_csv(run / "eval" / "test" / "instances.csv", keep_default_na=False, na_values=[""])
    for row in table.itertuples():  # one row per reference instance, as the challenge matched it
        present = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(small_dataset / "masks" / f"{row.series}.mha"))))
        assert sorted(instances[instances.series == row.series].label) == sorted(int(v) for v in present if v)
    scored_instances = {(s["scan"]): s for s in challenge["scans"]}
    for series, rows in instances.groupby("series"):  # its statuses agree with the challenge's detection rates
        vertebrae = rows[rows.structure == "vertebra"]
        detected = (vertebrae.status != "missed").mean()
        assert detected == pytest.approx(scored_instances[series]["DetectionRateVertebrae"])
    assert set(instances.status) <= {"found", "renumbered", "merged", "missed"}
    assert "## Level by level: what was missed or merged" in text and "| SPIDER | level |" in text
    summary = json.loads((run / "eval" / "test" / "summary.json").read_text())
    assert sum(summary["instances"]["vertebra"].values()) == (instances.structure == "vertebra").sum()
    assert summary == result.summary and challenge == result.challenge  # what evaluate returns is what it wrote
    pd.testing.assert_frame_equal(result.table, csv, check_dtype=False)
    from helpers.evaluation.evaluate import read_evaluation

    again = read_evaluation(run, "test")
    assert again.summary == result.summary and len(again.instances) == len(result.instances)


def test_predict_any_orientation_keeps_geometry(trained, small_dataset, tmp_path):
    series = scan_dataset(small_dataset).complete[0]
    image, _ = read_series(series)
    for orient in ("LPS", "PIR", "RAI"):
        path = tmp_path / f"in_{orient}.mha"
        sitk.WriteImage(sitk.DICOMOrient(image, orient), str(path))
        out = tmp_path / f"out_{orient}.mha"
        run = kit("predict", path, "--run", trained / "run", "--out", out)
        assert run.returncode == 0, run.stderr[-2000:]
        pred, src = sitk.ReadImage(str(out)), sitk.ReadImage(str(path))
        assert pred.GetSize() == src.GetSize() and np.allclose(pred.GetDirection(), src.GetDirection())
        assert np.allclose(pred.GetOrigin(), src.GetOrigin())


def test_predict_on_a_real_sample(trained, real_samples, tmp_path):
    image = real_samples / "images" / "7_t2_SPACE.mha"
    out = tmp_path / "7.mha"
    Predictor(trained / "run")  # loads
    run = kit("predict", image, "--run", trained / "run", "--out", out)
    assert run.returncode == 0, run.stderr[-2000:]
    src, pred = sitk.ReadImage(str(image)), sitk.ReadImage(str(out))
    assert pred.GetSize() == src.GetSize() and pred.GetSpacing() == src.GetSpacing()
    assert np.allclose(pred.GetDirection(), src.GetDirection())


def test_evaluate_without_a_run_says_so(tmp_path):
    """`python -m helpers evaluate` as a process: the real entry point."""
    run = subprocess.run([sys.executable, "-m", "helpers", "evaluate", "--run", str(tmp_path)],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "config.json: not found" in run.stderr


def _predict(image, run, out):
    return kit("predict", image, "--run", run, "--out", out)


def test_damaged_or_mismatched_checkpoint_is_named(trained, small_dataset, tmp_path):
    from helpers.training.models import build_model

    run = Path(shutil.copytree(trained / "run", tmp_path / "run"))
    best = run / "checkpoint_best.pt"
    data = best.read_bytes()
    best.write_bytes(data[: len(data) // 2])  # a truncated sync
    with pytest.raises(DataError, match="checkpoint_best.pt: is damaged: truncated"):
        Predictor(run)
    image = scan_dataset(small_dataset).complete[0].image
    for args in (["predict", str(image), "--run", str(run), "--out", str(tmp_path / "p.mha")],
                 ["evaluate", "--run", str(run)]):
        cli = kit(*args)
        assert cli.returncode == 2 and "Traceback" not in cli.stderr, cli.stderr[-2000:]
        assert f"{best}: is damaged" in cli.stderr and "to use checkpoint_last.pt instead" in cli.stderr
    assert not (tmp_path / "p.mha").exists()
    config = json.loads((run / "config.json").read_text())
    patch = tuple(config["patch_size"])
    others = {"another number of classes": build_model("unetr", patch, config["model_options"], out_channels=20),
              "another model": build_model("unet", patch)}
    for what, model in others.items():
        torch.save({"model": model.state_dict()}, best)
        with pytest.raises(DataError) as err:
            Predictor(run)
        assert f"{best}: does not fit this run's unetr with 4 classes" in str(err.value), what
        assert "another model or for another number of classes" in str(err.value)


def test_predict_refuses_bad_values_and_evaluate_skips_them(trained, small_dataset, tmp_path):
    image, _ = read_series(scan_dataset(small_dataset).complete[0])
    arr = sitk.GetArrayFromImage(image)
    arr[: arr.shape[0] // 4] = np.nan
    nan = sitk.GetImageFromArray(arr)
    nan.CopyInformation(image)
    sitk.WriteImage(nan, str(tmp_path / "nan.mha"))
    cli = _predict(tmp_path / "nan.mha", trained / "run", tmp_path / "out.mha")
    assert cli.returncode == 2 and "Traceback" not in cli.stderr, cli.stderr[-2000:]
    assert f"{tmp_path / 'nan.mha'}: holds " in cli.stderr and "NaN voxels" in cli.stderr
    assert not (tmp_path / "out.mha").exists()

    data = Path(shutil.copytree(small_dataset, tmp_path / "data"))
    resample_dataset(data, tmp_path / "prep", progress=False)
    datalist = write_datalist(tmp_path / "prep", tmp_path / "datalist.json")
    assert len(datalist["test"]) >= 2
    victim = datalist["test"][0]["series"]
    path = data / "images" / f"{victim}.mha"
    constant = sitk.ReadImage(str(path)) * 0  # the raw file turned bad after resampling
    sitk.WriteImage(constant, str(path))
    before = tree_digest(data)
    run = Path(shutil.copytree(trained / "run", tmp_path / "run"))
    result = evaluate(run, tmp_path / "datalist.json", part="test", progress=False)
    table = result.table
    assert victim not in set(table["series"]) and len(table) == len(datalist["test"]) - 1
    skipped = json.loads((run / "eval" / "test" / "summary.json").read_text())["skipped"]
    assert skipped == result.skipped and len(skipped) == 1
    assert skipped[0].startswith(f"{path}: constant image")
    assert tree_digest(data) == before


def test_one_dice():
    from helpers.evaluation.dice import dice, joint_counts

    ref = np.array([0, 1, 1, 2, 2, 2, 0])
    pred = np.array([0, 1, 2, 2, 2, 0, 3])
    joint = joint_counts(ref, pred, 4)
    assert joint.sum() == ref.size and joint[2, 2] == 2
    assert dice(joint, 1) == pytest.approx(2 * 1 / (2 + 1)) and dice(joint, 2) == pytest.approx(2 * 2 / (3 + 3))
    assert dice(joint, 3) == 0.0 and dice(joint, 1, 2) == pytest.approx(2 * 1 / (2 + 3))
    assert np.isnan(dice(joint_counts(ref, ref, 5), 4))


def test_predictor_cleans_up_what_validation_chose(trained):
    from helpers.training.postprocess import chosen_cleanup
    from helpers.training.run_log import read_metrics

    run = trained / "run"
    entries = [e for e in read_metrics(run) if e["kind"] == "validation"]
    assert entries and all(f"clean_dice_{n}" in e for e in entries for n in ("vertebra", "disc", "canal"))
    predictor = Predictor(run)
    best = torch.load(run / "checkpoint_best.pt", weights_only=False)["iteration"]
    assert predictor.cleanup == chosen_cleanup(next(e for e in entries if e["iteration"] == best))


def test_evaluate_and_predict_on_a_full_disk_say_so_and_keep_nothing_partial(trained, small_dataset, tmp_path):
    """A real small disk mounted over the run's eval/ folder, and as predict's output folder."""
    from .test_faults import ROOT, mounted, one_line

    if ROOT.args[0]:
        pytest.skip(ROOT.kwargs["reason"])
    run = trained / "run"
    (run / "eval").mkdir(exist_ok=True)
    with mounted(run / "eval", 12) as disk:
        line = one_line(kit("evaluate", "--run", str(run), "--part", "test"))
        assert "not enough disk space to write" in line and str(disk) in line, line
        for path in disk.rglob("*.mha"):  # what was written is whole
            assert sitk.GetArrayFromImage(sitk.ReadImage(str(path))).size, path
        assert not list(disk.rglob(".tmp-*")) and not (disk / "test" / "summary.json").exists()
    image = next((small_dataset / "images").glob("*.mha"))
    with mounted(tmp_path / "out", 16) as disk:
        line = one_line(kit("predict", str(image), "--run", str(run), "--out", str(disk / "mask.nii.gz")))
        assert line.startswith(f"error: {disk}: not enough disk space to write mask.nii.gz"), line
        assert not list(disk.iterdir())
