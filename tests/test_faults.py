"""Operational faults, made real: a full disk (a small tmpfs), a read-only mount, two processes on one folder, a
killed process's lock, a changed setting on resume, and places that are files. Each case checks the one line the
user gets and what the folder holds afterwards: nothing partial trusted, the raw data unchanged."""

import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk
import torch

from helpers.core.atomic import digest, still_intact, write_image_atomic, write_text_atomic
from helpers.core.errors import KitError
from helpers.core.lock import LOCK_NAME, STALE_AFTER_S, folder_lock, holder_of
from helpers.data.resample import ResampleSettings, resample_dataset
from helpers.training.checkpoints import save_checkpoint
from helpers.training.loop import TrainConfig, train

from .conftest import kit, tree_digest

ROOT = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a file system for the test needs root")


@contextlib.contextmanager
def mounted(path: Path, size_kb: int, readonly: bool = False):
    """A real tmpfs of `size_kb` at `path` for the block (read-only when asked); skips where mounting fails."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size_kb}k" + (",ro" if readonly else "")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_line(result: subprocess.CompletedProcess) -> str:
    """The command failed with exit code 2 and one `error:` line, no traceback; that line."""
    assert result.returncode == 2, (result.returncode, result.stdout[-1500:], result.stderr[-1500:])
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    return errors[0]


def files_under(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- a full disk
@ROOT
def test_resample_on_a_full_disk_keeps_nothing_partial_and_a_rerun_finishes(small_dataset, tmp_path):
    raw = tree_digest(small_dataset)
    reference = tmp_path / "reference"
    assert kit("resample", str(small_dataset), "--out", str(reference), "--profile", "smoke").returncode == 0
    need = sum(p.stat().st_size for p in files_under(reference).values())
    with mounted(tmp_path / "disk", max(need * 4 // 10 // 1024, 64)) as disk:
        out = disk / "prep"
        line = one_line(kit("resample", str(small_dataset), "--out", str(out), "--profile", "smoke"))
        assert line.startswith(f"error: {out}") and "not enough disk space" in line and "free" in line, line
        written = files_under(out)
        assert not [name for name in written if ".tmp-" in name]  # no temporary file left behind
        images = [n for n in written if n.startswith(("images/", "labels/"))]
        assert images, "the disk took some series before it filled"
        for name in images:  # nothing partial under a final name: each is byte for byte what a full disk writes
            assert digest(written[name]) == digest(reference / name), name
        for name in (n for n in written if n.startswith("records/")):  # a record only for verified files
            record = json.loads(written[name].read_text())
            assert all(still_intact(out / record[k], record["files"][k]) for k in ("image", "label")), name
        subprocess.run(["mount", "-o", f"remount,size={need * 3 // 1024}k", str(disk)], check=True)
        rerun = kit("resample", str(small_dataset), "--out", str(out), "--profile", "smoke")
        assert rerun.returncode == 0, rerun.stderr[-2000:]
        assert "already up to date" in rerun.stdout
        final = files_under(out)
        for name in files_under(reference):
            if name.startswith(("images/", "labels/")):
                assert digest(final[name]) == digest(reference / name), name
        # a file damaged after its record was written is found by its checksum and made again
        victim = out / sorted(n for n in final if n.startswith("images/"))[0]
        victim.write_bytes(victim.read_bytes()[: victim.stat().st_size // 2])
        again = kit("resample", str(small_dataset), "--out", str(out), "--profile", "smoke")
        assert again.returncode == 0 and again.stdout.splitlines()[-1].startswith("1 resampled"), again.stdout
        assert digest(victim) == digest(reference / victim.relative_to(out))
    assert tree_digest(small_dataset) == raw  # raw data never written to


@ROOT
def test_each_writer_on_a_full_disk_says_so_and_keeps_the_old_file(tmp_path):
    image = sitk.GetImageFromArray(np.random.default_rng(0).random((40, 64, 64)).astype(np.float32))
    small = sitk.GetImageFromArray(np.ones((4, 4, 4), np.float32))
    with mounted(tmp_path / "disk", 256) as disk:
        old = write_image_atomic(small, disk / "image.nii")  # an older, intact file under the name
        write_text_atomic(disk / "note.json", "{}")
        for write, target in ((lambda: write_image_atomic(image, disk / "image.nii"), "image.nii"),
                              (lambda: write_image_atomic(image, disk / "other.nii.gz"), "other.nii.gz"),
                              (lambda: write_text_atomic(disk / "note.json", "x" * 400_000), "note.json"),
                              (lambda: save_checkpoint(disk / "checkpoint_last.pt", {"w": torch.ones(200_000)}),
                               "checkpoint_last.pt")):
            with pytest.raises(KitError, match=f"^{disk}: not enough disk space to write {target}"):
                write()
        assert digest(disk / "image.nii") == old and (disk / "note.json").read_text() == "{}"
        assert not (disk / "other.nii.gz").exists() and not (disk / "checkpoint_last.pt").exists()
        assert not list(disk.glob(".tmp-*"))


# ---------------------------------------------------------------- one process per folder
@pytest.mark.slow
def test_a_second_training_on_one_run_folder_is_refused_and_the_first_finishes(smoke_datalist, tmp_path):
    run = tmp_path / "run"
    command = ["train", "--datalist", str(smoke_datalist), "--out", str(run), "--max-iterations", "30",
               "--val-every", "15"]
    first = subprocess.Popen([sys.executable, "-m", "helpers", *command], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, encoding="utf-8")
    deadline = time.time() + 120
    while time.time() < deadline and not (run / LOCK_NAME).is_file():
        time.sleep(0.1)
    assert holder_of(run)["pid"] == first.pid
    second = kit(*command)
    line = one_line(second)
    assert f"{run} is in use: training by process {first.pid}" in line and "Wait for it to finish" in line
    evaluating = one_line(kit("evaluate", "--run", str(run)))  # nor evaluated while it trains
    assert f"is in use: training by process {first.pid}" in evaluating
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0, err[-2000:]
    entries = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    steps = [(e["kind"], e["iteration"]) for e in entries]
    assert len(steps) == len(set(steps)) and ("validation", 30) in steps  # one writer: no entry twice
    assert not (run / LOCK_NAME).exists()  # released


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    import socket

    (tmp_path / LOCK_NAME).write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname(),
                                                  "since": "2026-01-01T00:00:00", "what": "training"}))
    said = []
    with folder_lock(tmp_path, "evaluating", log=said.append):
        assert holder_of(tmp_path)["pid"] == os.getpid()
    assert said and f"process {dead.pid}" in said[0] and "no longer runs" in said[0]
    assert holder_of(tmp_path) is None
    other_host = {"pid": 1, "host": "another-machine", "since": "2026-01-01T00:00:00", "what": "training"}
    (tmp_path / LOCK_NAME).write_text(json.dumps(other_host))  # a Drive folder shared with another runtime
    with pytest.raises(KitError, match="in use: training by process 1 on another-machine"):
        with folder_lock(tmp_path, "training"):
            pass
    long_ago = time.time() - STALE_AFTER_S - 60  # that runtime was recycled: its lock stopped being refreshed
    os.utime(tmp_path / LOCK_NAME, (long_ago, long_ago))
    said.clear()
    with folder_lock(tmp_path, "training", log=said.append):
        pass
    assert "on another-machine" in said[0] and holder_of(tmp_path) is None


def test_a_held_lock_is_refreshed(tmp_path, monkeypatch):
    import helpers.core.lock as lock

    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    with folder_lock(tmp_path, "training"):
        long_ago = time.time() - 1000
        os.utime(tmp_path / LOCK_NAME, (long_ago, long_ago))
        time.sleep(0.3)
        assert time.time() - (tmp_path / LOCK_NAME).stat().st_mtime < 5


def test_temporary_files_of_a_killed_resample_are_removed_by_the_next(small_dataset, tmp_path):
    out = tmp_path / "prep"
    resample_dataset(small_dataset, out, ResampleSettings(min_inplane_mm=2.0), progress=False)
    stale = [out / "images" / ".tmp-abc-2_t1.nii", out / "records" / ".tmp-def-2_t1.json"]
    for path in stale:
        path.write_bytes(b"half")
    rerun = subprocess.run([sys.executable, "-m", "helpers", "resample", str(small_dataset), "--out", str(out),
                            "--profile", "smoke"], capture_output=True, text=True, encoding="utf-8")  # the real entry
    assert rerun.returncode == 0 and "removed 2 temporary file(s) left by an interrupted run" in rerun.stdout
    assert not any(path.exists() for path in stale)


def test_two_resamples_into_one_folder_the_second_is_refused(small_dataset, tmp_path):
    out = tmp_path / "prep"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom helpers.core.lock import folder_lock\n"
                               f"with folder_lock({str(out)!r}, 'resampling'):\n    print('held', flush=True)\n"
                               "    time.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        line = one_line(kit("resample", str(small_dataset), "--out", str(out), "--profile", "smoke"))
        assert f"{out} is in use: resampling by process {holder.pid}" in line
        assert not (out / "images").exists()
    finally:
        holder.kill()
        holder.wait()


# ---------------------------------------------------------------- a run's settings are its identity
def test_a_changed_seed_or_profile_is_refused_and_a_longer_run_is_recorded(smoke_datalist, tmp_path):
    run = tmp_path / "run"
    train(TrainConfig(str(smoke_datalist), str(run), max_iterations=2, val_every=2), progress=False)
    before = (run / "config.json").read_text()
    with pytest.raises(KitError, match=r"another seed \(seed 0 there, 7 now\)"):
        train(TrainConfig(str(smoke_datalist), str(run), max_iterations=4, val_every=2, seed=7), progress=False)
    with pytest.raises(KitError, match="holds a run of the smoke profile, not gpu .*patch_size"):
        train(TrainConfig(str(smoke_datalist), str(run), profile="gpu", max_iterations=4, val_every=2),
              progress=False)
    assert (run / "config.json").read_text() == before  # a refused rerun changes nothing
    train(TrainConfig(str(smoke_datalist), str(run), max_iterations=4, val_every=2), progress=False)
    config = json.loads((run / "config.json").read_text())
    assert config["max_iterations"] == 4 and config["seed"] == 0
    assert [(h["from_iteration"], h["max_iterations"]) for h in config["history"]] == [(0, 2), (2, 4)]
    train(TrainConfig(str(smoke_datalist), str(run), max_iterations=3, val_every=2), progress=False)
    assert json.loads((run / "config.json").read_text()) == config  # nothing ran: the record stays


# ---------------------------------------------------------------- places
@ROOT
def test_read_only_places_get_one_line(small_dataset, smoke_datalist, tmp_path):
    with mounted(tmp_path / "ro", 64, readonly=True) as ro:
        line = one_line(kit("resample", str(small_dataset), "--out", str(ro / "prep"), "--profile", "smoke"))
        assert f"{ro / 'prep'} is on a read-only file system" in line
        line = one_line(kit("train", "--datalist", str(smoke_datalist), "--out", str(ro / "run"),
                            "--max-iterations", "2"))
        assert "read-only file system" in line and str(ro) in line


def test_files_where_folders_belong_and_the_reverse(small_dataset, smoke_datalist, tmp_path):
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    line = one_line(kit("resample", str(small_dataset), "--out", str(blocker), "--profile", "smoke"))
    assert f"{blocker} is a file, where a folder is expected" in line
    line = one_line(kit("train", "--datalist", str(smoke_datalist), "--out", str(blocker / "run"),
                        "--max-iterations", "2"))
    assert f"{blocker} is a file, where a folder is expected" in line
    line = one_line(kit("train", "--datalist", str(tmp_path), "--out", str(tmp_path / "run")))
    assert f"{tmp_path}: is a folder, where a datalist (a file) is expected" in line
    listed = tmp_path / "list.json"
    listed.write_text("[]")
    line = one_line(kit("train", "--datalist", str(listed), "--out", str(tmp_path / "run")))
    assert f"{listed}: holds a JSON list, where a datalist (a JSON object" in line
    image = next((small_dataset / "images").glob("*.mha"))
    line = one_line(kit("predict", str(image), "--run", str(tmp_path), "--out", str(tmp_path)))
    assert f"{tmp_path}: is a folder, where the mask's file name is expected" in line
    assert blocker.read_text() == "a file"


def test_an_overview_without_files_or_no_overview_is_said_once(dataset_copy, tmp_path):
    overview = dataset_copy / "overview.csv"
    rows = overview.read_text().splitlines()
    overview.write_text("\n".join(rows + [rows[-1].replace(rows[-1].split(",")[0], "999_t1.mha", 1)]) + "\n")
    said = kit("resample", str(dataset_copy), "--out", str(tmp_path / "a"), "--profile", "smoke")
    assert said.returncode == 0, said.stderr[-2000:]
    notes = [line for line in said.stdout.splitlines() if "NOTE" in line]
    assert len(notes) == 1 and "lists 1 series with no image in images/ (999_t1)" in notes[0], said.stdout
    overview.unlink()
    said = kit("resample", str(dataset_copy), "--out", str(tmp_path / "b"), "--profile", "smoke")
    notes = [line for line in said.stdout.splitlines() if "NOTE" in line]
    assert said.returncode == 0 and len(notes) == 1 and "overview.csv: not found" in notes[0], said.stdout


@ROOT
@pytest.mark.slow
def test_training_whose_disk_fills_stops_with_one_line_and_keeps_its_checkpoint(smoke_datalist, tmp_path):
    """The disk fills while training runs (another program takes the space after the resource check said it fits):
    the next save ends the run with the one line, and the checkpoint before it is intact, so a rerun resumes from
    it."""
    import shutil

    with mounted(tmp_path / "disk", 600 * 1024) as disk:
        run = disk / "run"
        command = [sys.executable, "-m", "helpers", "train", "--datalist", str(smoke_datalist), "--out", str(run),
                   "--max-iterations", "40", "--val-every", "4"]
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
        deadline = time.time() + 300
        while time.time() < deadline and not (run / "checkpoint_prev.pt").is_file() and proc.poll() is None:
            time.sleep(0.1)
        with open(disk / "filler", "wb") as f:  # everything left but 64 KB
            f.write(b"\0" * max(shutil.disk_usage(disk).free - 65536, 0))
        out, err = proc.communicate(timeout=600)
        result = subprocess.CompletedProcess(command, proc.returncode, out, err)
        line = one_line(result)
        assert f"error: {run}: not enough disk space to write checkpoint_" in line, line
        assert not list(run.glob(".tmp-*"))
        from helpers.training.checkpoints import load_checkpoint

        saved = load_checkpoint(run / "checkpoint_last.pt")["iteration"]  # whole, and where the run stood
        assert saved >= 8 and saved % 4 == 0
        (disk / "filler").unlink()
        rerun = kit("train", "--datalist", str(smoke_datalist), "--out", str(run), "--max-iterations", "40",
                    "--val-every", "4")
        assert rerun.returncode == 0 and f"resuming {run} from iteration {saved}" in rerun.stdout, rerun.stderr[-2000:]
