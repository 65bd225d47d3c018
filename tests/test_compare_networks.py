"""The bench's `networks` section (tools/compare_networks.py) without its half hour: the contenders, the real samples'
folds by patient, the figures taken from an evaluation summary, and the Markdown it renders."""

from __future__ import annotations

import json

from helpers.core.profiles import MODELS
from helpers.training.models import require_patch_fits
from tools.compare_networks import CHALLENGE, contenders, leave_one_out, networks_markdown, scores


def test_every_contender_is_a_kit_network_that_takes_its_patch_with_two_learning_rates():
    for net in contenders():
        assert net["model"] in MODELS and len(net["lrs"]) == 2  # the same tuning effort for each
        require_patch_fits(net["model"], net["patch"])
    assert {n["model"] for n in contenders()} == {"unetr", "segresnet", "dynunet", "swinunetr"}


def test_leave_one_out_holds_out_each_patient_with_all_their_series(tmp_path):
    items = [{"image": f"{p}_{s}.nii.gz", "label": "l", "patient": p, "sequence": s, "series": f"{p}_{s}"}
             for p in (1, 2, 3) for s in ("t1", "t2")]
    path = tmp_path / "datalist.json"
    path.write_text(json.dumps({"training": items[:4], "validation": items[4:], "test": [], "data": {}}))
    folds = [json.loads(p.read_text()) for p in leave_one_out(path)]
    assert len(folds) == 3
    for fold in folds:
        held = {i["patient"] for i in fold["test"]}
        assert len(held) == 1 and len(fold["test"]) == 2 and not fold["validation"]
        assert held.isdisjoint(i["patient"] for i in fold["training"]) and len(fold["training"]) == 4


def test_the_section_renders_from_its_figures():
    stat = {"mean": 0.5}
    summary = {"cases": 2, "metrics": {f"dice_{s}": {"mean": 0.5} for s in ("vertebra", "disc", "canal")},
               "challenge": {k: {"mean": None} for k in CHALLENGE},
               "challenge_corrected": dict.fromkeys(CHALLENGE, stat)}
    figures = scores(summary)
    assert figures["dice_disc"] == 0.5 and figures["DiceScoreDiscs"] == 0.5
    assert figures["as_challenge_DiceScoreDiscs"] is None
    row = {"name": "SegResNet", "model": "segresnet", "patch": [64, 64, 16], "parameters_m": 1.2, "step_s": 0.12,
           "peak_rss_mb": 700, "iterations": 375, "chosen_lr": 3e-3, "synthetic": figures,
           "tries": [{"lr": 3e-3, "validation": {"dice_mean": 0.6}}, {"lr": 1e-3, "validation": {"dice_mean": 0.5}}],
           "real": {"folds": [{"test": figures}], **figures}}
    text = "\n".join(networks_markdown({"budget_s": 45, "precision": "float32", "patients": 6, "real_folds": 4,
                                        "split": {"training": 4, "validation": 1, "test": 1}, "networks": [row],
                                        "seconds": 1800}, {"cpu": "a CPU", "cpus": 2}))
    assert "| SegResNet | 1.2 | 64 x 64 x 16 | 0.12 | 700 | 375 | 0.003: 0.600 (kept), 0.001: 0.500 |" in text
    assert "leave-one-out" in text and "Measured in 30 min" in text and "docs/networks.md" in text
