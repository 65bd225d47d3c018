"""The resource check `train` prints before its first step: a cache that cannot fit in the free memory is cached
in part, with the reason, and training still runs; checkpoints that cannot fit on the disk stop the run before its
first step, with what to do. The free memory and disk are the machine's; the tests set them as a small machine would
have."""

from __future__ import annotations

import collections
import json

import pytest

from helpers.core.errors import KitError
from helpers.training import resources
from helpers.training.loop import TrainConfig, check_resources_for, train


@pytest.fixture
def datalist(smoke_datalist):
    """The session's small dataset on the smoke profile's grid (conftest.smoke_datalist)."""
    return smoke_datalist


def test_the_resource_check_measures_what_caching_needs(datalist, tmp_path):
    check = check_resources_for(TrainConfig(str(datalist), str(tmp_path / "run")))
    items = json.loads(datalist.read_text())
    voxels = sum(resources.voxels(datalist.parent / i["image"]) for i in items["training"] + items["validation"])
    assert 5 * voxels < check.cache_needed < 25 * voxels  # image float32, label uint8, class indices
    assert check.cache_rate == 1.0 and not check.problems
    assert check.lines[0].startswith("resources: cpu (")  # then the precision, and why
    assert f"); {check.parameters / 1e6:.1f} M parameters; patch (64, 64, 16)" in check.lines[0]


def test_a_cache_too_large_for_the_free_memory_is_cached_in_part(datalist, tmp_path, monkeypatch, capsys):
    probe = check_resources_for(TrainConfig(str(datalist), str(tmp_path / "probe")))
    weights = probe.parameters * resources.BYTES_PER_PARAMETER_TRAINING
    monkeypatch.setattr(resources, "free_ram", lambda: weights + probe.cache_needed)  # half the rest: the cache
    summary = train(TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=3, val_every=3), progress=False)
    out = capsys.readouterr().out
    assert "50% of them cached (at most half the memory the network leaves free), the rest read from disk" in out
    assert summary["iteration"] == 3 and summary["cache_rate"] == pytest.approx(0.5)


def test_checkpoints_that_cannot_fit_stop_the_run_before_it_starts(datalist, tmp_path, monkeypatch):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 10**6, 10**6))
    need = check_resources_for(TrainConfig(str(datalist), str(tmp_path / "probe"))).disk_needed / 1e9
    expected = rf"this run cannot fit: .*run: 0.0 GB free, the checkpoints need about {need:.1f} GB"
    with pytest.raises(KitError, match=expected):
        train(TrainConfig(str(datalist), str(tmp_path / "run"), max_iterations=3, val_every=3), progress=False)
    assert not list((tmp_path / "run").glob("checkpoint_*.pt"))


def test_a_resumed_run_needs_only_the_disk_its_checkpoints_do_not_hold(datalist, tmp_path, monkeypatch):
    run = tmp_path / "run"
    first = train(TrainConfig(str(datalist), str(run), max_iterations=2, val_every=2), progress=False)
    kept = sum(p.stat().st_size for p in run.glob("checkpoint_*.pt"))
    full = first["parameters"] * resources.BYTES_PER_PARAMETER_CHECKPOINTS
    usage = collections.namedtuple("usage", "total used free")
    free = full - kept + 10**6  # enough for what is still to come, not for a whole new run
    monkeypatch.setattr(resources.shutil, "disk_usage", lambda path: usage(10**10, 10**10 - free, free))
    again = train(TrainConfig(str(datalist), str(run), max_iterations=4, val_every=2), progress=False)
    assert again["iteration"] == 4
    with pytest.raises(KitError, match="this run cannot fit"):
        train(TrainConfig(str(datalist), str(tmp_path / "new"), max_iterations=2, val_every=2), progress=False)
