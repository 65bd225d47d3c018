"""Notebook 05's last section: a CNN trained for the wall-clock time UNETR's run trained, everything else the same
(helpers/course/networks.py); its curves beside UNETR's, the table, exercise 05.4; a rerun trains nothing again."""

from __future__ import annotations

import json

import pytest

from helpers.course.networks import (
    SAME_TIME_FILE,
    best_dice,
    compared_runs,
    compared_table,
    comparison_dir,
    plot_compared,
    same_time_run,
    structure_gained_most,
)
from helpers.training.loop import TrainConfig, train


def test_a_cnn_for_unetrs_training_time(smoke_datalist, tmp_path, monkeypatch):
    from helpers.course import networks

    config = TrainConfig(str(smoke_datalist), str(tmp_path / "train"), max_iterations=4, val_every=2)
    with pytest.raises(Exception, match="train UNETR first"):
        same_time_run(config, "segresnet", progress=False)
    train(config, progress=False)
    measured = {"unetr": 0.3, "segresnet": 0.1}  # what step_seconds measures is the machine's: set here
    monkeypatch.setattr(networks, "step_seconds", lambda c: measured[c.model])
    runs = same_time_run(config, "segresnet", progress=False)
    cnn = comparison_dir(config.run_dir, "segresnet")
    assert runs["segresnet"]["run"] == cnn and runs["segresnet"]["iterations"] == 12  # 4 x 0.3 s / 0.1 s
    recorded = json.loads((cnn / "config.json").read_text())
    assert recorded["model"] == "segresnet" and recorded["max_iterations"] == 12 and recorded["val_every"] == 6
    ours = json.loads((tmp_path / "train" / "config.json").read_text())
    for key in ("datalist", "lr", "loss", "class_ratios", "batch_size", "samples_per_volume", "patch_size", "seed"):
        assert recorded[key] == ours[key], key  # everything but the network and its length is UNETR's
    table = compared_table(runs)
    assert list(table["network"]) == ["UNETR", "SegResNet"] and list(table["training (s)"]) == [1, 1]
    fig = plot_compared(runs, save=tmp_path / "compared.png")
    assert (tmp_path / "compared.png").is_file() and len(fig.axes) == 3
    gained = structure_gained_most(config.run_dir, cnn)
    cnn_best, unetr_best = best_dice(cnn), best_dice(config.run_dir)
    assert gained == max(("vertebra", "disc", "canal"), key=lambda s: cnn_best[s] - unetr_best[s])
    # a rerun keeps the step times it measured first: the finished run is returned, not trained again
    measured.update(unetr=1.0)
    before = (cnn / "metrics.jsonl").read_text()
    again = same_time_run(config, "segresnet", progress=False)
    assert again["segresnet"]["iterations"] == 12 and (cnn / "metrics.jsonl").read_text() == before
    assert json.loads((cnn / SAME_TIME_FILE).read_text())["step_s"] == {"unetr": 0.3, "segresnet": 0.1}
    # notebook 06's table and the report hold both runs once the CNN is evaluated on the same series
    from helpers.course.report import build_report, comparison_table
    from helpers.evaluation.evaluate import evaluate

    assert compared_runs(config.run_dir) == {"SegResNet in UNETR's training time (notebook 05)": cnn}
    ours, theirs = (evaluate(run, part="test", progress=False).summary for run in (config.run_dir, cnn))
    table = comparison_table(ours, "test", True, {"SegResNet in UNETR's training time (notebook 05)": theirs})
    rows = table[table["source"].str.startswith("SegResNet")]
    assert len(rows) == 2 and rows.iloc[0]["vertebra"].startswith(f"{theirs['metrics']['dice_vertebra']['mean']:.3f}")
    report = build_report(config.run_dir, tmp_path / "report", "test").read_text()
    assert "SegResNet in UNETR's training time (notebook 05), view 1" in report


def test_step_seconds_times_the_kits_loop(smoke_datalist, tmp_path):
    from helpers.course.networks import step_seconds

    seconds = step_seconds(TrainConfig(str(smoke_datalist), str(tmp_path / "unused"), model="segresnet"), steps=4)
    assert 0 < seconds < 30 and not (tmp_path / "unused").exists()
