"""The first cell a student runs: one line of versions and device, and a GPU check before training."""

import sys

import monai
import pytest
import SimpleITK as sitk
import torch

from helpers.course.notebook_setup import gpu_check, setup, versions_line


def test_versions_and_device_in_one_line(capsys):
    setup(use_drive=False)
    first = capsys.readouterr().out.splitlines()[0]
    assert first == versions_line()
    for part in (f"torch {torch.__version__}", f"MONAI {monai.__version__}",
                 f"SimpleITK {sitk.Version_VersionString()}", "device "):
        assert part in first


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_colab_without_gpu_says_what_to_click(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    assert gpu_check() is False
    out = capsys.readouterr().out
    assert "Runtime > Change runtime type" in out and "T4 GPU" in out


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_no_gpu_locally_is_said_plainly(capsys):
    assert gpu_check() is False
    assert "No GPU here" in capsys.readouterr().out
