"""Levels by name: L5 and L5/S1 where a disc lies below the lowest vertebra (the sacrum in view), nothing guessed
where it does not; on the real samples' reference masks, whose lowest disc sits on the sacrum."""

import numpy as np
import SimpleITK as sitk

from helpers.levels import disc_level, name_levels, vertebra_level


def test_levels_named_from_the_sacrum_up():
    names, why = name_levels([0, 1, 2, 3, 4, 5, 6, 7, 100, 201, 202, 203, 206])
    assert [names[v] for v in (1, 2, 5, 6, 7)] == ["L5", "L4", "L1", "T12", "T11"]
    assert [names[d] for d in (201, 202, 203, 206)] == ["L5/S1", "L4/L5", "L3/L4", "T12/L1"]
    assert 100 not in names and "vertebra 1 is L5" in why and "transitional" in why
    assert vertebra_level(18) == "C7" and disc_level(1) == "L5/S1"


def test_no_disc_on_the_sacrum_no_names():
    names, why = name_levels([1, 2, 3, 100, 202, 203])
    assert names == {} and "no disc below the lowest vertebra" in why
    assert name_levels([100])[0] == {} and "no vertebra" in name_levels([100])[1]
    names, why = name_levels([1, 3, 100, 201, 202, 203])  # vertebra 2 merged into a neighbour
    assert names == {} and "vertebra 2 missing" in why


def test_real_samples_lowest_disc_is_l5_s1(real_samples):
    for path in sorted((real_samples / "masks").glob("*.mha")):
        values = np.unique(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))
        names, why = name_levels(values)
        assert names.get(1) == "L5" and names.get(201) == "L5/S1", (path.name, why)
