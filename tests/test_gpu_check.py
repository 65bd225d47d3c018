"""The bench's `gpu` section (tools/gpu_check.py): on a machine without a GPU it says so and measures nothing; its
code runs on the CPU at tiny sizes (slow tier), and its Markdown names the card and what fits a T4."""

from __future__ import annotations

import pytest
import torch

from tools.bench import _isolated
from tools.gpu_check import T4_GIB, bench_gpu, gpu_contenders, gpu_markdown


def test_without_a_gpu_nothing_is_measured_and_the_section_says_so(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result = bench_gpu(tmp_path, _isolated)
    assert result == {"skipped": "no GPU on the machine that ran the bench"} and not any(tmp_path.iterdir())
    text = "\n".join(gpu_markdown(result))
    assert "Not measured: no GPU on the machine that ran the bench" in text and "--only gpu" in text


def test_the_networks_at_gpu_size_take_the_learning_rate_they_kept_on_the_cpu():
    nets = {n["name"]: n for n in gpu_contenders({"SegResNet": 1e-3})}
    assert "UNETR (smoke size)" not in nets and nets["UNETR (gpu size, ViT-B)"]["lr"] == 2e-4
    assert nets["SegResNet"]["lr"] == 1e-3 and nets["SwinUNETR"]["lr"] == 3e-3  # not measured: the first it tries


@pytest.mark.slow
def test_the_section_runs_its_code_on_the_cpu_at_tiny_sizes(tmp_path):
    result = bench_gpu(tmp_path, _isolated, {"SegResNet": 1e-3}, tiny=True, say=lambda _: None)
    profile = result["profile"]
    assert profile["device"] == "cpu" and profile["iterations"] == 3 and profile["step_s"] > 0
    assert profile["check"][0].startswith("resources: cpu") and 0 <= profile["data_wait_share"] < 1
    assert profile["largest_validation"]["seconds"] > 0 and len(profile["largest_validation"]["shape"]) == 3
    assert profile["profile_run_s"] > profile["step_s"] * 5000  # 5,000 steps and their validations
    assert [n["model"] for n in result["networks"]] == ["unetr", "segresnet", "dynunet", "swinunetr"]
    for row in result["networks"]:
        assert row["step_s"] > 0 and row["iterations_an_hour"] > 0 and 0 <= row["test"]["dice_vertebra"] <= 1
    text = "\n".join(gpu_markdown(result))
    assert "Card: **cpu** (tiny sizes on the CPU" in text and "| SegResNet |" in text and "resources: cpu" in text


def test_the_markdown_says_what_fits_a_t4():
    test = {"dice_vertebra": 0.8, "dice_disc": 0.7, "dice_canal": 0.9}
    result = {"tiny": False, "patients": 6, "scale": 1.0, "prep_s": 20.0,
              "series": {"training": 10, "validation": 3, "test": 3},
              "profile": {"device": "NVIDIA H100", "check": ["resources: NVIDIA H100 (float16)"], "parameters_m": 92.6,
                          "patch": [128, 128, 32], "iterations": 300, "step_s": 0.2, "data_wait_share": 0.04,
                          "train_peak_gib": 9.5, "profile_iterations": 5000, "profile_val_every": 500,
                          "profile_run_s": 1200.0, "fits_t4": True,
                          "largest_validation": {"shape": [300, 300, 40], "seconds": 1.5, "peak_gib": 3.0}},
              "networks": [{"name": "SegResNet", "parameters_m": 4.7, "lr": 3e-3, "step_s": 0.1,
                            "train_peak_gib": T4_GIB + 1, "iterations_an_hour": 36000, "test": test}]}
    text = "\n".join(gpu_markdown(result))
    assert "Card: **NVIDIA H100**." in text
    assert "| the profile's 5,000 iterations, a validation every 500 | 20 min on this card |" in text
    assert "| fits a 16 GB T4's memory (15 GiB allocatable) | yes |" in text
    assert "| SegResNet | 4.7 | 0.003 | 0.100 | 16.0 | 36000 | 0.800 | 0.700 | 0.900 | no |" in text
