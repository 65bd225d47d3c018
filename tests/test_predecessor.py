"""The predecessor's recipe (helpers/data/predecessor.py): one definition, and every place that compares with it
uses it."""

import numpy as np
import SimpleITK as sitk

from helpers.data import predecessor
from helpers.data.axes import canonical_values, orientation
from helpers.data.resample import ResampleSettings, normalise
from helpers.data.spider import scan_dataset


def test_recipe_constants():
    assert predecessor.PREDECESSOR_FIXED_SIZE == (128, 128, 32) and predecessor.CT_WINDOW == (-1000.0, 3096.0)
    assert len(predecessor.instance_classes()) == 20 and predecessor.PREDECESSOR_REPORTED == 0.7154
    assert predecessor.describe() == ("fixed 128x128x32 (AP x SI x LR), CT window [-1000, 3096], 20 instance classes, "
                               "no augmentation")
    assert ResampleSettings().size == predecessor.PREDECESSOR_FIXED_SIZE
    settings = ResampleSettings(**predecessor.PREDECESSOR_PREPROCESSING)
    assert (settings.mode, settings.labels, settings.intensity) == ("fixed_size", "instances", "ct_window")
    # the same settings key as before the recipe moved here: earlier outputs of the predecessor's recipe stay up to date
    assert settings.key() == ResampleSettings(mode="fixed_size", labels="instances", intensity="ct_window").key()
    assert predecessor.PREDECESSOR_TRAINING == {"patch_size": [128, 128, 32], "augment": False, "class_ratios": []}


def test_bench_predecessor_recipe_is_the_predecessor_module():
    from tools.bench import _recipe

    settings, options = _recipe("predecessor")
    assert settings == ResampleSettings(**predecessor.PREDECESSOR_PREPROCESSING)
    assert options == predecessor.PREDECESSOR_TRAINING


def test_ct_window_is_the_one_normalise_uses():
    values = np.array([[[-2000.0, -1000.0, 1048.0, 3096.0, 5000.0]]], np.float32)
    assert np.allclose(predecessor.ct_window(values), [0, 0, 0.5, 1, 1])
    normed, info = normalise(sitk.GetImageFromArray(values), intensity="ct_window")
    assert np.allclose(sitk.GetArrayFromImage(normed), predecessor.ct_window(values))
    assert (info["value_low"], info["value_high"]) == predecessor.CT_WINDOW


def test_predecessor_preprocess_makes_the_predecessor_size_in_canonical_order(small_dataset, tmp_path):
    """32 slices left-right, 128 x 128 in the sagittal plane: the predecessor UNETR's img_size (128, 128, 32),
    (AP, SI, LR)."""
    count = predecessor.predecessor_preprocess(small_dataset, tmp_path)
    assert count == len(scan_dataset(small_dataset).complete)
    for path in tmp_path.glob("*_image.nii.gz"):
        image = sitk.ReadImage(str(path))
        assert canonical_values(image.GetSize(), orientation(image)) == predecessor.PREDECESSOR_FIXED_SIZE
        arr = sitk.GetArrayViewFromImage(image)
        assert arr.min() >= 0 and arr.max() <= 1
