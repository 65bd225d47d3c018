"""Levels by name: L5 and L5/S1 where a disc lies below the lowest vertebra (the sacrum in view), nothing guessed
where it does not; on the real samples' reference masks, whose lowest disc sits on the sacrum."""

import numpy as np
import SimpleITK as sitk

from helpers.data.labels import disc_level, name_levels, vertebra_level


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


def _boxes(shape, boxes):
    """A label array with each (value, z0, z1) filled as a slab of rows 4..12, columns 4..12."""
    array = np.zeros(shape, np.int16)
    for value, z0, z1 in boxes:
        array[z0:z1, 4:12, 4:12] = value
    return array


def test_each_instance_found_renumbered_merged_or_missed():
    """Constructed fates scored by the challenge's own matching: vertebrae 1 and 2 painted as one label (merged),
    disc 202 left out (missed), vertebra 3 called 4 (renumbered), disc 201 and the canal right (found)."""
    import pandas as pd

    from helpers.evaluation.challenge import score_instances
    from helpers.evaluation.levels import instance_rows, level_table, worst_instances

    layout = [(1, 0, 4), (201, 4, 6), (2, 6, 10), (202, 10, 12), (3, 12, 16)]
    reference = _boxes((16, 16, 16), layout)
    reference[:, 13:15, 6:10] = 100
    prediction = _boxes((16, 16, 16), [(1, 0, 4), (201, 4, 6), (1, 6, 10), (4, 12, 16)])
    prediction[:, 13:15, 6:10] = 100
    instances = score_instances(reference, prediction, (1.0, 1.0, 1.0))
    rows = pd.DataFrame(instance_rows("a_t2", instances))
    fate = dict(zip(rows["label"], rows["status"]))
    assert fate == {1: "merged", 2: "merged", 3: "renumbered", 100: "found", 201: "found", 202: "missed"}
    assert rows.set_index("label").loc[1, "with"] == "2" and rows.set_index("label").loc[3, "match"] == 4
    assert rows.set_index("label").loc[201, "level"] == "L5/S1"  # the disc on the sacrum names the levels
    twice = pd.concat([rows, rows.assign(series="b_t1")])
    table = level_table(twice).set_index("SPIDER")
    assert list(table.index) == [1, 2, 3, 201, 202, 100]  # vertebrae, discs, canal
    assert table.loc[202, "missed"] == 2 and table.loc[1, "merged"] == 2 and table.loc[100, "found"] == 2
    assert table.loc[1, "level"] == "L5" and table.loc[202, "level"] == "L4/L5"
    assert worst_instances(twice, 2)["label"].tolist() == [202, 202]  # Dice 0 first
