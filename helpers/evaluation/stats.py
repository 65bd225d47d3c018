"""Mean ± sd over series, one way for every table: `summarise` (the one definition of the spread) and `mean_sd` (the
one way it is written).

The spread is the sample standard deviation (ddof=1, pandas' default), as the SPIDER challenge's evaluation code
computes it; the kit's own per-structure metrics use the same, so the report's views differ in what they score,
never in how they average. A series without a value (NaN: a structure absent on both sides, a distance to nothing)
is left out and counted: `n` is how many series have one, `complete` whether all do.

Used by notebook 06 (through evaluate.py and challenge.py), the report (helpers/course/report.py) and
`python -m helpers evaluate` / `score`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np


def json_number(value) -> float | None:
    """A float for JSON, or None where it is not a finite number (JSON has no NaN)."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def summarise(values: Iterable) -> dict:
    """{"mean", "sd", "n", "complete"} of one metric over series: NaN values left out; sd the sample standard
    deviation (ddof=1; None for fewer than two values); mean None when no series has a value."""
    array = np.asarray([np.nan if v is None else float(v) for v in values], dtype=float)
    present = array[~np.isnan(array)]
    return {"mean": json_number(present.mean()) if len(present) else None,
            "sd": json_number(present.std(ddof=1)) if len(present) > 1 else None,
            "n": int(len(present)), "complete": bool(len(present) == len(array))}


def mean_sd(stat: dict | None, digits: int = 3) -> str:
    """'0.812 ± 0.051' from a `summarise` record, with '(n=4)' after it when some series had no value; 'n/a' where
    there is no mean, and for the sd of a single value. `digits`: decimals (2 for numbers published so)."""
    if not stat or stat.get("mean") is None:
        return "n/a"
    sd = "n/a" if stat.get("sd") is None else f"{stat['sd']:.{digits}f}"
    text = f"{stat['mean']:.{digits}f} ± {sd}"
    return text if stat.get("complete", True) else f"{text} (n={stat['n']})"
