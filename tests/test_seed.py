"""The seed's recipe (helpers/data/predecessor.py): one definition, and every place that compares with it uses it."""

import numpy as np
import SimpleITK as sitk

from helpers.data import predecessor as seed
from helpers.data.axes import canonical_values, orientation
from helpers.data.resample import ResampleSettings, normalise
from helpers.data.spider import scan_dataset


def test_recipe_constants():
    assert seed.SEED_FIXED_SIZE == (128, 128, 32) and seed.CT_WINDOW == (-1000.0, 3096.0)
    assert len(seed.instance_classes()) == 20 and seed.SEED_REPORTED == 0.7154
    assert seed.describe() == ("fixed 128x128x32 (AP x SI x LR), CT window [-1000, 3096], 20 instance classes, "
                               "no augmentation")
    assert ResampleSettings().size == seed.SEED_FIXED_SIZE
    settings = ResampleSettings(**seed.SEED_PREPROCESSING)
    assert (settings.mode, settings.labels, settings.intensity) == ("fixed_size", "instances", "ct_window")
    # the same settings key as before the recipe moved here: earlier seed-style outputs stay up to date
    assert settings.key() == ResampleSettings(mode="fixed_size", labels="instances", intensity="ct_window").key()
    assert seed.SEED_TRAINING == {"patch_size": [128, 128, 32], "augment": False, "class_ratios": []}


def test_bench_seed_recipe_is_the_seed_module():
    from tools.bench import _recipe

    settings, options = _recipe("seed")
    assert settings == ResampleSettings(**seed.SEED_PREPROCESSING) and options == seed.SEED_TRAINING


def test_ct_window_is_the_one_normalise_uses():
    values = np.array([[[-2000.0, -1000.0, 1048.0, 3096.0, 5000.0]]], np.float32)
    assert np.allclose(seed.ct_window(values), [0, 0, 0.5, 1, 1])
    normed, info = normalise(sitk.GetImageFromArray(values), intensity="ct_window")
    assert np.allclose(sitk.GetArrayFromImage(normed), seed.ct_window(values))
    assert (info["value_low"], info["value_high"]) == seed.CT_WINDOW


def test_seed_style_preprocess_makes_the_seed_size_in_canonical_order(small_dataset, tmp_path):
    """32 slices left-right, 128 x 128 in the sagittal plane: the seed UNETR's img_size (128, 128, 32), (AP, SI, LR)."""
    count = seed.seed_style_preprocess(small_dataset, tmp_path)
    assert count == len(scan_dataset(small_dataset).complete)
    for path in tmp_path.glob("*_image.nii.gz"):
        image = sitk.ReadImage(str(path))
        assert canonical_values(image.GetSize(), orientation(image)) == seed.SEED_FIXED_SIZE
        arr = sitk.GetArrayViewFromImage(image)
        assert arr.min() >= 0 and arr.max() <= 1
