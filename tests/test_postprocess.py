import numpy as np

from helpers.data.labels import CANAL, DISC, VERTEBRA
from helpers.training.postprocess import chosen_cleanup, cleanup


def spine_with_specks() -> np.ndarray:
    s = np.zeros((12, 40, 30), np.uint8)
    s[2:10, 5:15, 5:15] = VERTEBRA  # a vertebra
    s[2:10, 16:26, 5:15] = VERTEBRA  # the next one
    s[2:10, 15, 5:15] = DISC
    s[4:8, 2:38, 18:22] = CANAL
    s[0, 0, 29] = VERTEBRA  # specks far away
    s[11, 39, 0] = DISC
    s[0, 39, 29] = CANAL
    return s


def test_cleanup_removes_specks_and_keeps_the_spine():
    s = spine_with_specks()
    out = cleanup(s)
    assert out[0, 0, 29] == 0 and out[11, 39, 0] == 0 and out[0, 39, 29] == 0
    assert (out[2:10, 5:26, 5:15] == s[2:10, 5:26, 5:15]).all()  # both vertebrae (equal size) and the disc
    assert (out == CANAL).sum() == (s == CANAL).sum() - 1
    assert np.array_equal(spine_with_specks(), s), "the input is not changed"


def test_cleanup_touches_only_the_structures_asked_for():
    s = spine_with_specks()
    out = cleanup(s, which=[CANAL])
    assert out[0, 39, 29] == 0 and out[0, 0, 29] == VERTEBRA and out[11, 39, 0] == DISC


def test_cleanup_is_chosen_where_it_raised_the_validation_dice():
    entry = {"dice_vertebra": 0.70, "clean_dice_vertebra": 0.69, "dice_disc": 0.75, "clean_dice_disc": 0.78,
             "dice_canal": 0.80, "clean_dice_canal": 0.90}
    assert chosen_cleanup(entry) == [DISC, CANAL]
    assert chosen_cleanup({"dice_vertebra": 0.7}) == [] and chosen_cleanup({}) == []
