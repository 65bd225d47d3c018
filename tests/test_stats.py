"""Mean ± sd over series, one way (helpers/evaluation/stats.py): the sample sd everywhere, NaN left out and counted."""

import math

import numpy as np
import pandas as pd

from helpers.evaluation.challenge import challenge_summary
from helpers.evaluation.stats import mean_sd, summarise


def test_the_spread_is_the_sample_sd_with_nan_left_out_and_counted():
    stat = summarise([0.5, 0.7, float("nan"), None])
    assert stat["mean"] == 0.6 and math.isclose(stat["sd"], np.std([0.5, 0.7], ddof=1))
    assert stat["sd"] == pd.Series([0.5, 0.7, np.nan]).std()  # pandas' default, as the challenge's code computes it
    assert (stat["n"], stat["complete"]) == (2, False)
    assert summarise([0.4]) == {"mean": 0.4, "sd": None, "n": 1, "complete": True}
    assert summarise([float("nan")])["mean"] is None


def test_one_formatter_says_what_was_left_out():
    assert mean_sd(summarise([0.5, 0.7])) == "0.600 ± 0.141"
    assert mean_sd(summarise([0.5, 0.7, float("nan")])) == "0.600 ± 0.141 (n=2)"
    assert mean_sd(summarise([0.4])) == "0.400 ± n/a" and mean_sd(None) == "n/a"
    assert mean_sd({"mean": 0.93, "sd": 0.05}, digits=2) == "0.93 ± 0.05"


def test_the_challenge_summary_is_the_same_summarise():
    rows = [{"scan": "a", "OveralDiceScore": 0.5}, {"scan": "b", "OveralDiceScore": 0.7}]
    assert challenge_summary(rows)["OveralDiceScore"] == summarise([0.5, 0.7])
    assert challenge_summary(rows)["ASDVertebrae"] == {"mean": None, "sd": None, "n": 0, "complete": False}
