"""Every network the kit offers (`--model`) goes through the whole kit on tiny data: training, resume, the plan,
prediction (NIfTI and DICOM SEG), evaluation and the report, and the MONAI bundle that `monai.bundle` verifies and
runs. A network that cannot take the profile's patch trains on the nearest patch it takes (swinunetr: 64,64,32), as
`train` tells a user who asks for it (tests/test_networks.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from helpers.core.profiles import MODELS, NETWORK_NAMES, PROFILES
from helpers.training.models import PATCH_MULTIPLE, build_model, parameter_count

from .conftest import kit


def patch_for(model: str) -> list[int]:
    """The smoke profile's patch, or the nearest one the network takes (each side up to its multiple)."""
    multiple = PATCH_MULTIPLE[model]
    return [max(multiple, -(-v // multiple) * multiple) for v in PROFILES["smoke"].patch_size]


def test_dynunet_follows_nnunets_rule_for_the_patch():
    from helpers.training.models import dynunet_stages

    kernels, strides = dynunet_stages((64, 64, 16))
    assert strides == [[1, 1, 1], [2, 2, 1], [2, 2, 1], [2, 2, 2], [2, 2, 2]]  # 4 x 4 x 4 at the bottom
    assert dynunet_stages((128, 128, 32))[1][-1] == [2, 2, 2] and len(dynunet_stages((128, 128, 32))[1]) == 6
    assert all(k == [3, 3, 3] for k in kernels)
    net = build_model("dynunet", (64, 64, 16))
    assert 15e6 < parameter_count(net) < 18e6  # nnU-Net's widths: 32, 64, 128, 256, 320


# seconds each on two cores; swinunetr (its 64 x 64 x 32 patch, windowed attention) and dynunet (nnU-Net's widths,
# 16 M parameters) take 25-70 s with one thread: the slow tier
SLOW = {"swinunetr", "dynunet"}


@pytest.mark.parametrize("model", [pytest.param(m, marks=pytest.mark.slow) if m in SLOW else m for m in MODELS])
def test_every_network_through_the_whole_kit(model, smoke_datalist, small_dataset, tmp_path):
    import highdicom as hd
    from monai.bundle import run as bundle_run
    from monai.bundle import verify_net_in_out

    from helpers.data.dicom_series import write_dicom_series
    from helpers.data.spider import read_series, scan_dataset
    from helpers.training.loop import TrainConfig, check_resources_for

    from .test_scans import scan_like

    run = tmp_path / "run"
    patch = patch_for(model)
    common = ("--datalist", smoke_datalist, "--out", run, "--profile", "smoke", "--model", model,
              "--patch-size", ",".join(map(str, patch)), "--val-every", "2")
    first = kit("train", *common, "--max-iterations", "2")
    assert first.returncode == 0, first.stderr[-3000:]
    assert "resources: cpu (" in first.stdout and "finished 2 iterations" in first.stdout
    again = kit("train", *common, "--max-iterations", "3")  # resume, extended by one iteration
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"resuming {run} from iteration 2" in again.stdout and "finished 3 iterations" in again.stdout
    config = json.loads((run / "config.json").read_text())
    assert config["model"] == model and config["patch_size"] == patch

    planned = TrainConfig(str(smoke_datalist), str(tmp_path / "planned"), model=model, patch_size=patch)
    plan = check_resources_for(planned)
    assert plan.parameters == parameter_count(build_model(model, tuple(patch), config["model_options"]))

    # prediction: a NIfTI scan gets a label image on its grid; a DICOM series a DICOM SEG
    series = next(s for s in scan_dataset(small_dataset).complete if s.sequence == "t2_SPACE")
    image = scan_like(read_series(series)[0])
    sitk.WriteImage(image, str(tmp_path / "scan.nii.gz"))
    out = kit("predict", tmp_path / "scan.nii.gz", "--run", run, "--out", tmp_path / "mask.nii.gz")
    assert out.returncode == 0, out.stderr[-3000:]
    assert sitk.ReadImage(str(tmp_path / "mask.nii.gz")).GetSize() == image.GetSize()
    write_dicom_series(image, tmp_path / "dicom", "T2 SPACE SAG")
    seg = kit("predict", tmp_path / "dicom", "--run", run, "--out", tmp_path / "mask.dcm")
    if seg.returncode == 2:  # a 3-iteration network may paint nothing but background: the kit says so
        assert "the prediction is empty" in seg.stderr, seg.stderr[-3000:]
    else:
        assert seg.returncode == 0, seg.stderr[-3000:]
        assert hd.seg.segread(str(tmp_path / "mask.dcm")).ManufacturerModelName == model

    # evaluation and the report name the network
    scored = kit("evaluate", "--run", run)
    assert scored.returncode == 0, scored.stderr[-3000:]
    report = kit("report", "--run", run, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr[-3000:]
    text = (tmp_path / "report" / "README.md").read_text()
    assert f"model `{model}`" in text
    assert f"{NETWORK_NAMES[model]} recipe: patches of {' x '.join(map(str, patch))} voxels" in text

    # the bundle: MONAI checks the network's input and output, and runs it on a NIfTI scan with no kit code
    bundle = tmp_path / "bundle"
    exported = kit("export", "--run", run, "--out", bundle)
    assert exported.returncode == 0, exported.stderr[-3000:]
    verify_net_in_out(net_id="network_def", meta_file=str(bundle / "configs" / "metadata.json"),
                      config_file=str(bundle / "configs" / "inference.json"))
    (tmp_path / "scans").mkdir()
    sitk.WriteImage(image, str(tmp_path / "scans" / "scan.nii.gz"))
    with torch.enable_grad():  # the bundle turns gradients off for the process (its `initialize`): restored after
        bundle_run(config_file=str(bundle / "configs" / "inference.json"), bundle_root=str(bundle),
                   dataset_dir=str(tmp_path / "scans"))
    theirs = sitk.ReadImage(str(bundle / "eval" / "scan_seg.nii.gz"))
    assert theirs.GetSize() == image.GetSize()
    assert set(np.unique(sitk.GetArrayViewFromImage(theirs))) <= {0, 1, 2, 3}
