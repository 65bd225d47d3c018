"""Training: it learns, it resumes after a kill, it runs on 2 processes, it loads safely, it refuses bad input."""

import hashlib
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch

from helpers.core.errors import DataError
from helpers.data.datalist import load_datalist, write_datalist
from helpers.data.resample import ResampleSettings, resample_dataset
from helpers.training.batch_guard import batch_sources, check_batch
from helpers.training.checkpoints import LAST, PREV, kept_checkpoints, load_checkpoint, resume_state, save_last
from helpers.training.loop import TrainConfig, TrainingDiverged, train
from helpers.training.run_log import read_metrics

from .conftest import kit, tree_digest


@pytest.fixture
def datalist(smoke_datalist):
    """The session's small dataset on the smoke profile's grid (conftest.smoke_datalist)."""
    return smoke_datalist


def _args(datalist, out, iterations, val_every):
    return ["train", "--datalist", str(datalist), "--out", str(out), "--max-iterations", str(iterations),
            "--val-every", str(val_every)]


@pytest.fixture(scope="module")
def smoke_scale_datalist(tmp_path_factory):
    """Synthetic patients as the smoke profile makes and resamples them, the data its recipe is made for."""
    from helpers.core.profiles import get_profile
    from helpers.data.synth import write_dataset

    root = tmp_path_factory.mktemp("smoke_scale")
    data = write_dataset(root / "data", cases=5, seed=3, scale=get_profile("smoke").synth_scale, progress=False)
    resample_dataset(data, root / "prep", ResampleSettings(min_inplane_mm=get_profile("smoke").inplane_mm),
                     progress=False)
    write_datalist(root / "prep", root / "datalist.json")
    return root / "datalist.json"


@pytest.mark.slow
def test_short_run_learns_beyond_chance(smoke_scale_datalist, tmp_path):
    datalist = smoke_scale_datalist
    summary = train(TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=60, val_every=30),
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
    assert config["preprocessing"]["mode"] == "spacing" and config["patch_size"] == [64, 64, 16]
    assert (tmp_path / "run" / "checkpoint_best.pt").is_file()


@pytest.mark.slow
def test_killed_run_resumes_where_it_stopped(datalist, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "helpers", *_args(datalist, out, 12, 3)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # a process, to be killed
    deadline = time.time() + 300
    while time.time() < deadline and not (out / "checkpoint_last.pt").is_file():
        time.sleep(0.2)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = load_checkpoint(out / "checkpoint_last.pt")["iteration"]
    assert 3 <= saved < 12
    rerun = kit(*_args(datalist, out, 12, 3))
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"resuming {out} from iteration {saved}" in rerun.stdout
    assert load_checkpoint(out / "checkpoint_last.pt")["iteration"] == 12
    vals = [e["iteration"] for e in read_metrics(out) if e["kind"] == "validation"]
    assert vals == [3, 6, 9, 12]
    again = kit(*_args(datalist, out, 12, 3))
    assert "already finished" in again.stdout
    assert load_checkpoint(out / PREV)["iteration"] == 9
    _truncate(out / LAST)  # a damaged last checkpoint costs one validation interval, not the run
    longer = kit(*_args(datalist, out, 15, 3))
    assert longer.returncode == 0, longer.stderr[-2000:]
    assert f"{out / LAST}: is damaged" in longer.stdout and f"resuming {out} from iteration 9" in longer.stdout
    assert [e["iteration"] for e in read_metrics(out) if e["kind"] == "validation"] == [3, 6, 9, 12, 15]
    _truncate(out / LAST)
    _truncate(out / PREV)
    broken = kit(*_args(datalist, out, 18, 3))
    assert broken.returncode == 2 and "Traceback" not in broken.stderr
    assert f"{out / LAST}: is damaged" in broken.stderr and f"Move {LAST} out of" in broken.stderr


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
    with pytest.raises(DataError, match="not found; notebook 04"):
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


def test_nan_input_stops_training_as_bad_data_and_keeps_the_checkpoint(small_dataset, tmp_path):
    resample_dataset(small_dataset, tmp_path / "prep", progress=False)
    write_datalist(tmp_path / "prep", tmp_path / "datalist.json")
    config = TrainConfig(str(tmp_path / "datalist.json"), str(tmp_path / "run"), max_iterations=2, val_every=2)
    train(config, progress=False)
    digest = hashlib.sha256((tmp_path / "run" / "checkpoint_last.pt").read_bytes()).hexdigest()
    for path in (tmp_path / "prep" / "images").glob("*.nii"):  # changed after resampling, behind its back
        img = nib.load(path)
        nib.save(nib.Nifti1Image(np.full(img.shape, np.nan, np.float32), img.affine), path)
    config.max_iterations = 4
    with pytest.raises(DataError) as err:
        train(config, progress=False)
    assert not isinstance(err.value, TrainingDiverged)
    assert str(err.value.path).startswith(str(tmp_path / "prep" / "images"))
    assert "NaN or infinite voxels" in str(err.value) and "not a divergence" in str(err.value)
    assert hashlib.sha256((tmp_path / "run" / "checkpoint_last.pt").read_bytes()).hexdigest() == digest


def test_true_divergence_keeps_its_message_and_names_no_missing_checkpoint(datalist, tmp_path):
    config = TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=6, val_every=100, lr=1e30)
    with pytest.raises(TrainingDiverged) as err:
        train(config, progress=False)
    message = str(err.value)
    assert "the loss became nan" in message and "Lower the learning rate" in message
    assert "no checkpoint has been written yet" in message and ".pt" not in message
    assert not list((tmp_path / "run").glob("*.pt"))


def _loader(datalist_path, part: str):
    """The training code's own transforms and MONAI's loader, as train() builds them."""
    from monai.data import DataLoader, Dataset

    from helpers.core.profiles import get_profile
    from helpers.training.transforms import transforms

    patch = get_profile("smoke").patch_size
    items = load_datalist(datalist_path)[part]
    return DataLoader(Dataset(items, transforms(patch, 2, part == "training")), batch_size=2), items


def test_loader_yields_only_finite_values_from_a_mixed_folder(bad_values_copy, tmp_path):
    root, expected = bad_values_copy
    before = tree_digest(root)
    resample_dataset(root, tmp_path / "prep", progress=False)
    write_datalist(tmp_path / "prep", tmp_path / "datalist.json")
    assert tree_digest(root) == before
    for part in ("training", "validation"):
        loader, items = _loader(tmp_path / "datalist.json", part)
        seen = set()
        for batch in loader:
            assert torch.isfinite(batch["image"]).all()
            assert set(torch.unique(batch["label"]).tolist()) <= {0, 1, 2, 3}
            check_batch(batch, 4)
            seen |= {Path(f).name.split(".nii")[0] for f in batch_sources(batch, "image")}
        assert seen == {i["series"] for i in items} and seen.isdisjoint(expected)


def test_bad_batches_name_their_series(datalist, tmp_path):
    root = Path(shutil.copytree(datalist.parent, tmp_path / "copy"))
    items = load_datalist(root / "datalist.json")["training"]
    image, label = Path(items[0]["image"]), Path(items[1]["label"])
    img = nib.load(image)
    arr = img.get_fdata().astype(np.float32)
    arr[::4, ::4, ::4] = np.inf  # in every random patch
    nib.save(nib.Nifti1Image(arr, img.affine), image)
    lab = nib.load(label)
    arr = np.asarray(lab.dataobj).copy()
    arr[arr == 2] = 7  # a value outside the 4 structure classes
    nib.save(nib.Nifti1Image(arr, lab.affine), label)
    errors = []
    for part in ("training", "validation"):
        loader, _ = _loader(root / "datalist.json", part)
        for batch in loader:
            try:
                check_batch(batch, 4)
            except DataError as e:
                errors.append(str(e))
    text = "\n".join(errors)
    assert f"{image}: holds NaN or infinite voxels" in text
    assert f"{label}: holds label values 7 outside the 4 classes 0..3" in text
    assert "not a divergence" in text


def _tiny_state(iteration: int) -> dict:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    return {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": {}, "scaler": {},
            "iteration": iteration, "best_metric": 0.5, "best_iteration": iteration, "rng": {}}


def _truncate(path: Path) -> None:
    """What an interrupted Google Drive sync leaves: the first half of the file."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_damaged_last_checkpoint_costs_one_interval(tmp_path):
    for iteration in (2, 4):
        save_last(tmp_path, _tiny_state(iteration))
    assert load_checkpoint(tmp_path / PREV)["iteration"] == 2 and load_checkpoint(tmp_path / LAST)["iteration"] == 4
    _truncate(tmp_path / LAST)
    messages = []
    state, path = resume_state(tmp_path, messages.append)
    assert path == tmp_path / PREV and state["iteration"] == 2
    assert messages[0].startswith(f"{tmp_path / LAST}: is damaged")
    assert "resuming from the previous checkpoint checkpoint_prev.pt (iteration 2)" in messages[0]
    save_last(tmp_path, _tiny_state(6))  # the damaged last is replaced; the good previous one stays
    assert load_checkpoint(tmp_path / PREV)["iteration"] == 2 and load_checkpoint(tmp_path / LAST)["iteration"] == 6
    (tmp_path / LAST).unlink()  # killed between the two renames of a save
    state, path = resume_state(tmp_path, messages.append)
    assert path == tmp_path / PREV and "checkpoint_last.pt is missing" in messages[-1]
    assert resume_state(tmp_path / "new run") is None


def test_no_readable_checkpoint_says_which_and_what_to_do(tmp_path):
    for iteration in (2, 4):
        save_last(tmp_path, _tiny_state(iteration))
    _truncate(tmp_path / LAST)
    _truncate(tmp_path / PREV)
    with pytest.raises(DataError) as err:
        resume_state(tmp_path)
    assert err.value.path == tmp_path / LAST
    assert "is damaged" in str(err.value) and f"no readable {PREV}" in str(err.value)
    assert f"Move {LAST} out of {tmp_path}" in str(err.value)
    (tmp_path / PREV).unlink()
    (tmp_path / LAST).write_text("not a checkpoint")
    with pytest.raises(DataError, match="is damaged: truncated or not a PyTorch checkpoint"):
        resume_state(tmp_path)
    torch.save({"model": {}}, tmp_path / LAST)
    with pytest.raises(DataError, match="is not a checkpoint of this kit \\(it lacks optimizer"):
        resume_state(tmp_path)


def test_predecessor_classes_map_to_structures():
    from helpers.data.predecessor import predecessor_class_lut, predecessor_class_structures
    from helpers.training.transforms import _PredecessorClasses

    label = torch.tensor([[0, 1, 9, 10, 100, 201, 209, 210, 25]])
    classes = _PredecessorClasses()(label)
    assert classes.tolist() == [[0, 1, 9, 0, 10, 11, 19, 0, 0]]  # levels above 9 become background, never canal
    assert predecessor_class_structures()[classes].tolist() == [[0, 1, 1, 0, 3, 2, 2, 0, 0]]
    assert predecessor_class_lut()[100] == 10


def _centre_classes(datalist, class_ratios, draws=12):
    from helpers.training.transforms import transforms

    data = load_datalist(datalist)
    chain = transforms((32, 32, 16), 4, True, class_ratios=class_ratios)
    chain.set_random_state(seed=0)
    counts = np.zeros(4)
    for item in data["training"][:3]:
        for _ in range(draws):
            for patch in chain(item):
                label = patch["label"][0].numpy()
                counts[int(label[tuple(s // 2 for s in label.shape)])] += 1
    return counts / counts.sum()


def test_balanced_patches_centre_on_every_structure(datalist):
    balanced = _centre_classes(datalist, [1, 1, 1, 1])
    assert balanced.min() > 0.12, balanced  # each class ~1/4 (augmentation moves a few centres)
    pos_neg = _centre_classes(datalist, [])  # the predecessor's pos/neg sampling: the canal is rarely the centre
    assert pos_neg[3] < 0.5 * balanced[3], (pos_neg, balanced)


def test_divergence_message_names_only_checkpoints_that_exist(tmp_path):
    assert kept_checkpoints(tmp_path).startswith("no checkpoint has been written yet")
    save_last(tmp_path, _tiny_state(2))
    assert kept_checkpoints(tmp_path) == f"the last good checkpoint is kept in {tmp_path / LAST}"
    save_last(tmp_path, _tiny_state(4))
    assert kept_checkpoints(tmp_path).endswith(f"{tmp_path / LAST} (previous one: {tmp_path / PREV})")


# ---------------------------------------------------------------- the pieces train() is made of
def test_instance_labels_decide_the_classes():
    from helpers.data.predecessor import predecessor_class_structures
    from helpers.training.transforms import class_structures, instance_labels

    assert instance_labels({"labels": "instances"}) and not instance_labels({"labels": "structures"})
    assert not instance_labels({})
    assert class_structures({"preprocessing": {"labels": "structures"}}).tolist() == [0, 1, 2, 3]
    instances = class_structures({"preprocessing": {"labels": "instances"}})
    assert instances.tolist() == predecessor_class_structures().tolist()


def test_preview_patches_hold_the_classes_training_sees(small_dataset, datalist, tmp_path):
    from helpers.core.profiles import get_profile
    from helpers.training.loop import preview_patches

    resample_dataset(small_dataset, tmp_path / "prep", ResampleSettings(labels="instances"), progress=False)
    write_datalist(tmp_path / "prep", tmp_path / "instances.json")
    seen = {}
    for name, path in (("structures", datalist), ("instances", tmp_path / "instances.json")):
        patches = preview_patches(TrainConfig(str(path), str(tmp_path / "run")), volumes=4)
        assert len(patches) == 4 * get_profile("smoke").samples_per_volume  # 4 volumes x the profile's patches
        seen[name] = set(torch.unique(torch.stack([p["label"] for p in patches])).tolist())
    assert seen["structures"] <= {0, 1, 2, 3}
    assert seen["instances"] <= set(range(20)) and max(seen["instances"]) > 3  # the predecessor's 20 classes
    again = preview_patches(TrainConfig(str(datalist), str(tmp_path / "run")), volumes=4)
    assert set(torch.unique(torch.stack([p["label"] for p in again])).tolist()) == seen["structures"]  # seeded


def test_rng_state_round_trips_and_the_data_seed_follows_position():
    import io
    import random

    from helpers.training.random_state import data_seed, rng_state, set_rng_state

    state = rng_state()
    first = (torch.rand(3), np.random.rand(3), random.random())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    set_rng_state(torch.load(buffer, weights_only=True))  # as a checkpoint holds it: no pickled objects
    second = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(first[0], second[0]) and np.array_equal(first[1], second[1]) and first[2] == second[2]
    assert data_seed(0, 0, 5) == 5 and data_seed(0, 1, 5) == 1005 and data_seed(2**32 - 1, 0, 1) == 0


def test_run_log_averages_losses_and_trims_on_resume(tmp_path):
    from helpers.training.run_log import RunLog, trim_metrics

    log = RunLog(tmp_path)
    for value in (1.0, 3.0):
        log.loss(value)
    log.train(2, 0.5)
    log.validation({"kind": "validation", "iteration": 2, "dice_mean": 0.25})
    log.loss(5.0)
    log.train(4, 0.25)
    log.close()
    entries = read_metrics(tmp_path)
    assert [(e["kind"], e["iteration"]) for e in entries] == [("train", 2), ("validation", 2), ("train", 4)]
    assert entries[0]["loss"] == 2.0 and entries[0]["lr"] == 0.5 and entries[2]["loss"] == 5.0
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "iter')  # a line cut short by a crash
    assert len(read_metrics(tmp_path)) == 3
    trim_metrics(tmp_path, 2)
    assert [e["iteration"] for e in read_metrics(tmp_path)] == [2, 2]
    silent = RunLog(tmp_path / "rank1", write=False)  # ranks other than 0 write nothing
    silent.loss(1.0)
    silent.train(1, 0.1)
    assert not (tmp_path / "rank1").exists()


def test_one_process_needs_no_process_group(monkeypatch, capsys):
    from helpers.training.distributed import Processes

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    procs = Processes.start()
    assert (procs.rank, procs.world, procs.distributed, procs.main) == (0, 1, False, True)
    model = torch.nn.Linear(2, 2)
    assert procs.wrap(model) is model
    procs.barrier()
    procs.finish()
    procs.log("said once")
    Processes(rank=1, world=2).log("not said")
    assert capsys.readouterr().out == "said once\n"


def test_a_changed_recipe_does_not_resume_into_the_old_run(datalist, tmp_path):
    from dataclasses import asdict

    from helpers.core.errors import KitError
    from helpers.training.loop import _with_data

    config, _ = _with_data(TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=2))
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps({**asdict(config), "lr": config.lr / 3}))
    with pytest.raises(KitError, match="another lr"):
        train(TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=2), progress=False)
    assert not (tmp_path / "run" / "metrics.jsonl").exists()


def test_a_run_recorded_before_the_one_axis_order_reads_the_same(tmp_path):
    """config.json of an earlier version (no `axes`: patch_size and the preprocessing record in (LR, SI, AP)) is
    read in the kit's one order (AP, SI, LR): the same run resumes, another one is still refused."""
    from dataclasses import asdict

    from helpers.core.errors import KitError
    from helpers.data.resample import ResampleSettings
    from helpers.training.loop import TrainConfig
    from helpers.training.run_record import CONFIG_AXES, require_resumable, upgraded

    prep = ResampleSettings(spacing=(2.0, 2.0, 4.4), min_inplane_mm=2.0).record()
    new = asdict(TrainConfig(datalist="datalist.json", run_dir=str(tmp_path), preprocessing=prep).resolved())
    assert new["axes"] == CONFIG_AXES and new["patch_size"] == [64, 64, 16]
    old = {k: v for k, v in new.items() if k != "axes"}
    old_prep = dict(prep, spacing=[4.4, 2.0, 2.0], size=[32, 128, 128], version=5)  # (LR, SI, AP)
    old.update(patch_size=[16, 64, 64], preprocessing=old_prep)
    assert upgraded(old) == new and upgraded(new) is new
    (tmp_path / "config.json").write_text(json.dumps(old))
    require_resumable(tmp_path, asdict(TrainConfig(**new)))  # the same run: resumes
    (tmp_path / "config.json").write_text(json.dumps(dict(old, patch_size=[64, 64, 16])))  # (16, 64, 64) now
    with pytest.raises(KitError, match=r"patch_size \[16, 64, 64\] there, \[64, 64, 16\] now"):
        require_resumable(tmp_path, asdict(TrainConfig(**new)))


def test_what_is_not_given_is_the_profiles(tmp_path):
    """Notebook 05 with nothing set (`max_iterations = 0`, passed on as None) and `train` without options train the
    profile's own recipe; a value given wins (the tests and the class rehearsal give a few iterations)."""
    from helpers.core.profiles import PROFILES

    for name, profile in PROFILES.items():
        recipe = TrainConfig("datalist.json", str(tmp_path), profile=name, max_iterations=0 or None).resolved()
        assert (recipe.max_iterations, recipe.val_every, recipe.lr) == (profile.max_iterations, profile.val_every,
                                                                         profile.lr), name
        assert recipe.patch_size == list(profile.patch_size) and recipe.batch_size == profile.batch_size, name
        given = TrainConfig("datalist.json", str(tmp_path), profile=name, max_iterations=4).resolved()
        assert given.max_iterations == 4 and given.val_every == profile.val_every, name
