import numpy as np
import pytest

from helpers.data import labels


def test_structures_of_spider_values():
    mask = np.array([0, 1, 9, 25, 100, 101, 125, 201, 209, 225])
    assert labels.to_structures(mask).tolist() == [0, 1, 1, 1, 3, 1, 1, 2, 2, 2]
    assert [labels.STRUCTURES[i] for i in (1, 2, 3)] == ["vertebra", "disc", "canal"]


def test_unknown_values_are_refused_by_name():
    assert labels.unknown_labels([0, 1, 26, 99, 150, 226, -1]) == [-1, 26, 99, 150, 226]
    with pytest.raises(ValueError, match=r"\[26\]"):
        labels.to_structures(np.array([0, 26]))


def test_levels_and_names_follow_bottom_up_numbering():
    assert labels.level_of(3) == 3 and labels.level_of(203) == 3 and labels.level_of(103) == 3
    assert labels.label_name(203) == "disc 3 (below vertebra 3)"
    assert "sacrum" in labels.label_name(201)
    assert labels.label_name(100) == "spinal canal"
