"""The model handed on: `python -m helpers export` writes a MONAI bundle that MONAI's own entry points check
(`verify_net_in_out`) and run (`run` with the inference config) with no kit code, and whose masks agree with
`helpers predict` on the same scans (they differ only by anti-aliasing and post-processing: measured and bounded)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from helpers.core.profiles import get_profile
from helpers.data.datalist import write_datalist
from helpers.data.resample import ResampleSettings, resample_dataset
from helpers.data.synth import write_dataset
from helpers.inference import predict as predict_module
from helpers.inference.predict import predict_file
from helpers.training.loop import TrainConfig, train

pytestmark = pytest.mark.slow
ITERATIONS = 400  # enough for a model that finds the vertebrae and discs, so agreement means something


@pytest.fixture(scope="module")
def learned(tmp_path_factory) -> tuple[Path, Path]:
    """A smoke-profile run on the smoke profile's own data; and that data."""
    root = tmp_path_factory.mktemp("bundle")
    smoke = get_profile("smoke")
    data = write_dataset(root / "data", cases=5, seed=3, scale=smoke.synth_scale, progress=False)
    resample_dataset(data, root / "prep", ResampleSettings(min_inplane_mm=smoke.inplane_mm), progress=False)
    write_datalist(root / "prep", root / "datalist.json")
    train(TrainConfig(str(root / "datalist.json"), str(root / "run"), max_iterations=ITERATIONS, val_every=100),
          progress=False)
    return root / "run", data


def test_the_bundle_runs_through_monai_and_agrees_with_the_kit(learned, tmp_path, monkeypatch):
    run, data = learned
    bundle = tmp_path / "bundle"
    out = subprocess.run([sys.executable, "-m", "helpers", "export", "--run", str(run), "--out", str(bundle)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    assert {"configs/metadata.json", "configs/inference.json", "models/model.pt", "models/model.ts", "LICENSE",
            "docs/README.md"} <= {str(p.relative_to(bundle)) for p in bundle.rglob("*") if p.is_file()}
    meta = json.loads((bundle / "configs" / "metadata.json").read_text())
    assert meta["pred_classes"] == {"0": "background", "1": "vertebra", "2": "disc", "3": "canal"}
    assert "CC BY 4.0" in (bundle / "LICENSE").read_text()
    verify = subprocess.run([sys.executable, "-m", "monai.bundle", "verify_net_in_out", "network_def", "--meta_file",
                             str(bundle / "configs" / "metadata.json"), "--config_file",
                             str(bundle / "configs" / "inference.json")], capture_output=True, text=True)
    assert verify.returncode == 0, verify.stderr[-3000:]
    test = [r for r in json.loads((run.parent / "datalist.json").read_text())["test"]]
    scans = tmp_path / "scans"
    scans.mkdir()
    for record in test[:2]:
        stem = Path(record["image"]).name.split(".")[0]
        sitk.WriteImage(sitk.ReadImage(str(data / "images" / f"{stem}.mha")), str(scans / f"{stem}.nii.gz"))
    ran = subprocess.run([sys.executable, "-m", "monai.bundle", "run", "--config_file",
                          str(bundle / "configs" / "inference.json"), "--bundle_root", str(bundle),
                          "--dataset_dir", str(scans)], capture_output=True, text=True)
    assert ran.returncode == 0, ran.stderr[-3000:]
    # the bundle writes the network's structures without the run's post-processing (bundle.py): compare it with the
    # kit's prediction without it too, so that anti-aliasing is the one difference left
    monkeypatch.setattr(predict_module, "chosen_cleanup", lambda validation: [])
    both, sizes = np.zeros(3), np.zeros(3)  # per structure, over the scans: voxels in both maps, in each
    for scan in sorted(scans.glob("*.nii.gz")):
        stem = scan.name[: -len(".nii.gz")]
        theirs = sitk.ReadImage(str(bundle / "eval" / f"{stem}_seg.nii.gz"))
        ours = sitk.ReadImage(str(predict_file(scan, run, tmp_path / f"{stem}_kit.nii.gz", spider_values=False)))
        assert theirs.GetSize() == ours.GetSize() and np.allclose(theirs.GetOrigin(), ours.GetOrigin(), atol=1e-3)
        assert np.allclose(theirs.GetDirection(), ours.GetDirection(), atol=1e-6)
        a, b = sitk.GetArrayFromImage(theirs), sitk.GetArrayFromImage(ours)
        assert set(np.unique(a)) <= {0, 1, 2, 3}
        assert (b == 1).sum() > 1000 and (b == 2).sum() > 100, "the short run found no spine: agreement means nothing"
        for i, k in enumerate((1, 2, 3)):
            both[i] += np.logical_and(a == k, b == k).sum()
            sizes[i] += (a == k).sum() + (b == k).sum()
    dice = 2 * both / np.maximum(sizes, 1)
    print(f"\nbundle vs helpers predict, Dice of agreement (vertebra, disc, canal): {np.round(dice, 3).tolist()}, "
          f"voxels {sizes.tolist()}")
    # anti-aliasing only: the same network on the same scans. A structure the short run barely draws (a few hundred
    # voxels of canal) flips with the smoothing and says nothing; one it draws must agree
    assert all(d > 0.7 for d, n in zip(dice, sizes) if n > 4000), (dice, sizes)
