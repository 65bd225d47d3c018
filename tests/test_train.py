"""Training: it learns, it resumes after a kill, it runs on 2 processes, it loads safely, it refuses bad input."""

import hashlib
import json
import os
import pickle
import signal
import subprocess
import sys
import time

import nibabel as nib
import numpy as np
import pytest
import torch

from helpers.checkpoints import load_checkpoint
from helpers.datalist import write_datalist
from helpers.errors import DataError
from helpers.resample import resample_dataset
from helpers.train import TrainConfig, TrainingDiverged, load_datalist, read_metrics, train


@pytest.fixture(scope="module")
def datalist(small_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    resample_dataset(small_dataset, root / "prep", progress=False)
    write_datalist(root / "prep", root / "datalist.json")
    return root / "datalist.json"


def _cmd(datalist, out, iterations, val_every):
    return [sys.executable, "-m", "helpers", "train", "--datalist", str(datalist), "--out", str(out),
            "--max-iterations", str(iterations), "--val-every", str(val_every)]


@pytest.mark.slow
def test_short_run_learns_beyond_chance(datalist, tmp_path):
    summary = train(TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=40, val_every=20),
                    progress=False)
    entries = read_metrics(tmp_path / "run")
    losses = [e["loss"] for e in entries if e["kind"] == "train"]
    assert losses[-1] < 0.9 * losses[0]
    # chance level: labelling voxels at random with the true class frequencies gives Dice = frequency
    data = load_datalist(datalist)
    labels = np.concatenate([nib.load(i["label"]).get_fdata().ravel() for i in data["validation"]])
    chance = np.mean([(labels == k).mean() for k in (1, 2, 3)])
    assert summary["best_metric"] > 2 * chance, (summary["best_metric"], chance)
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["preprocessing"]["mode"] == "spacing" and config["patch_size"] == [16, 64, 64]
    assert (tmp_path / "run" / "checkpoint_best.pt").is_file()


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(datalist, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen(_cmd(datalist, out, 12, 3), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoint_last.pt").is_file():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(out / "checkpoint_last.pt")["iteration"]
    assert 3 <= saved < 12
    rerun = subprocess.run(_cmd(datalist, out, 12, 3), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming {out} from iteration {saved}" in rerun.stdout
    assert load_checkpoint(out / "checkpoint_last.pt")["iteration"] == 12
    vals = [e["iteration"] for e in read_metrics(out) if e["kind"] == "validation"]
    assert vals == [3, 6, 9, 12]
    again = subprocess.run(_cmd(datalist, out, 12, 3), capture_output=True, text=True)
    assert "already finished" in again.stdout


@pytest.mark.slow
def test_two_process_gloo_run(datalist, tmp_path):
    out = tmp_path / "ddp"
    run = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                          "--master_port", "29517", "-m", "helpers", "train", "--datalist", str(datalist),
                          "--out", str(out), "--max-iterations", "4", "--val-every", "2"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    assert load_checkpoint(out / "checkpoint_last.pt")["iteration"] == 4
    assert [e["iteration"] for e in read_metrics(out) if e["kind"] == "validation"] == [2, 4]


def test_checkpoints_load_without_running_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned > " + str(tmp_path / "pwned"),))

    torch.save({"model": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(pickle.UnpicklingError, match="Weights only load failed"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


def test_bad_datalists_say_what_is_wrong(datalist, tmp_path):
    with pytest.raises(DataError, match="datalist not found"):
        load_datalist(tmp_path / "none.json")
    good = json.loads(datalist.read_text())
    cases = {
        "missing_file": ({**good, "training": [{**good["training"][0], "image": "nope.nii.gz"}]}, "not found"),
        "wrong_keys": ({**good, "training": [{"img": "x", "seg": "y"}]}, "lacks the key"),
        "empty": ({**good, "training": []}, "training list is empty"),
        "no_validation": ({k: v for k, v in good.items() if k != "validation"}, "no 'validation' list"),
    }
    for name, (content, message) in cases.items():
        path = datalist.parent / f"bad_{name}.json"
        path.write_text(json.dumps(content))
        with pytest.raises(DataError, match=message):
            load_datalist(path)


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(small_dataset, tmp_path):
    resample_dataset(small_dataset, tmp_path / "prep", progress=False)
    write_datalist(tmp_path / "prep", tmp_path / "datalist.json")
    config = TrainConfig(str(tmp_path / "datalist.json"), str(tmp_path / "run"), max_iterations=2, val_every=2)
    train(config, progress=False)
    digest = hashlib.sha256((tmp_path / "run" / "checkpoint_last.pt").read_bytes()).hexdigest()
    for path in (tmp_path / "prep" / "images").glob("*.nii.gz"):
        img = nib.load(path)
        nib.save(nib.Nifti1Image(np.full(img.shape, np.nan, np.float32), img.affine), path)
    config.max_iterations = 4
    with pytest.raises(TrainingDiverged, match="iteration 3"):
        train(config, progress=False)
    assert hashlib.sha256((tmp_path / "run" / "checkpoint_last.pt").read_bytes()).hexdigest() == digest


def test_seed_classes_map_to_structures():
    from helpers.labels import seed_class_lut, seed_class_structures
    from helpers.train import _SeedClasses

    label = torch.tensor([[0, 1, 9, 10, 100, 201, 209, 210, 25]])
    classes = _SeedClasses()(label)
    assert classes.tolist() == [[0, 1, 9, 0, 10, 11, 19, 0, 0]]  # levels above 9 become background, never canal
    assert seed_class_structures()[classes].tolist() == [[0, 1, 1, 0, 3, 2, 2, 0, 0]]
    assert seed_class_lut()[100] == 10
