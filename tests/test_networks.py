"""A network that cannot take a patch says so in one line before training, with the patch it can take."""

from __future__ import annotations

import pytest

from helpers.core.errors import KitError
from helpers.core.profiles import MODELS, PROFILES
from helpers.training.models import PATCH_MULTIPLE, build_model, require_patch_fits

from .conftest import kit


def test_every_network_has_its_patch_rule_and_takes_the_profiles_patches_it_accepts():
    assert set(PATCH_MULTIPLE) == set(MODELS)
    for profile in PROFILES.values():
        require_patch_fits("unetr", profile.patch_size)  # the course's network takes every profile's patch


def test_swinunetr_refuses_the_smoke_patch_naming_one_it_takes():
    with pytest.raises(KitError, match=r"swinunetr needs every patch side a multiple of 32; the patch \(64, 64, 16\)"
                                       r".*--patch-size 64,64,32"):
        require_patch_fits("swinunetr", PROFILES["smoke"].patch_size)
    require_patch_fits("swinunetr", (64, 64, 32))
    build_model("swinunetr", (64, 64, 32))  # and MONAI builds it


def test_train_refuses_it_in_one_line_before_anything_is_written(smoke_datalist, tmp_path):
    run = tmp_path / "run"
    result = kit("train", "--datalist", smoke_datalist, "--out", run, "--profile", "smoke", "--model", "swinunetr")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--patch-size 64,64,32" in result.stderr
    assert not run.exists() or not any(run.iterdir())
