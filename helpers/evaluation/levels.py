"""Each reference instance's fate in an evaluation (found, renumbered, merged, missed), level by level: the failure
table a researcher reads first, with levels named (L5, L4/L5, ...) by `helpers.data.labels.name_levels` where the
reference allows it.

Used by notebook 06 and the report (per-level results).
"""

from __future__ import annotations

import math

import pandas as pd

from helpers.data.labels import level_of, name_levels
from helpers.evaluation.challenge import DETECTION_THRESHOLD, Instance

STATUSES = ("found", "renumbered", "merged", "missed")  # best to worst; what each means: `instance_rows`


def instance_rows(series: str, instances: list[Instance], variant: str = "corrected") -> list[dict]:
    """One row per reference instance of one evaluated series (the challenge's matching, `challenge.py`):
    its SPIDER value, structure, anatomical level (where the reference allows naming it), the predicted label it
    matched, Dice, ASD (mm, `variant`) and a status: `missed` below the challenge's detection Dice (0.1);
    `merged` when one predicted label is the best match of this and another reference instance (`with` names
    them); `renumbered` found, but under another number (its level would be named wrongly); else `found`."""
    names, _ = name_levels(i.label for i in instances)
    by_match: dict[int, list[int]] = {}
    for i in instances:
        if i.match and i.kind != "canal":
            by_match.setdefault(i.match, []).append(i.label)
    rows = []
    for i in instances:
        others = [k for k in by_match.get(i.match, []) if k != i.label] if i.kind != "canal" else []
        if i.dice < DETECTION_THRESHOLD:
            status = "missed"
        elif others:
            status = "merged"
        elif i.match != i.label and i.kind in ("vertebra", "disc"):
            status = "renumbered"
        else:
            status = "found"
        rows.append({"series": series, "label": i.label, "structure": i.kind, "level": names.get(i.label, ""),
                     "match": i.match, "status": status, "with": " ".join(map(str, others)),
                     "dice": i.dice, "asd": i.asd.get(variant, math.nan)})
    return rows


def level_table(instances: pd.DataFrame) -> pd.DataFrame:
    """Per SPIDER value over the evaluated series (`instance_rows` of each): its level name(s), in how many series
    it was found, renumbered, merged or missed, its mean Dice and its worst series."""
    rows = []
    for label, group in instances.reset_index(drop=True).groupby("label", sort=True):
        names = [n for n in group["level"].fillna("") if n]
        worst = group.loc[group["dice"].idxmin()]
        counts = group["status"].value_counts()
        rows.append({"SPIDER": int(label), "level": " or ".join(dict.fromkeys(names)),
                     "structure": group["structure"].iloc[0], "series": len(group),
                     **{s: int(counts.get(s, 0)) for s in STATUSES},
                     "Dice": round(float(group["dice"].mean()), 3),
                     "worst": f"{worst['series']} ({worst['dice']:.2f})"})
    order = {"vertebra": 0, "disc": 1, "canal": 2, "partial": 3}
    frame = pd.DataFrame(rows, columns=["SPIDER", "level", "structure", "series", *STATUSES, "Dice", "worst"])
    return frame.sort_values(["structure", "SPIDER"], key=lambda c: c.map(order) if c.name == "structure" else c,
                             kind="stable").reset_index(drop=True)


def worst_instances(instances: pd.DataFrame, count: int = 8) -> pd.DataFrame:
    """The `count` reference instances with the lowest Dice (then the largest ASD): the failure gallery's rows."""
    ranked = instances.assign(_asd=instances["asd"].fillna(math.inf))
    ranked = ranked.sort_values(["dice", "_asd"], ascending=[True, False], kind="stable").head(count)
    return ranked.drop(columns="_asd").reset_index(drop=True)


def numbering_shifts(instances: pd.DataFrame) -> dict[str, int]:
    """Series whose found vertebrae all carry the same wrong number (match - reference, e.g. +1: an extra level
    below the lowest reference vertebra, such as the unlabelled sacrum painted as vertebra), {series: shift}."""
    found = instances[(instances["structure"] == "vertebra") & instances["status"].isin(["found", "renumbered"])]
    shifts = {}
    for series, rows in found.groupby("series"):
        offsets = set((rows["match"] - rows["label"]).astype(int))
        if len(offsets) == 1 and 0 not in offsets:
            shifts[str(series)] = offsets.pop()
    return shifts


def describe(row: pd.Series) -> str:
    """One instance in words: '12_t2 vertebra 3 (L3): merged with 4, Dice 0.41'."""
    level = f" ({row['level']})" if isinstance(row["level"], str) and row["level"] else ""
    what = {"missed": "missed" if not row["match"] else f"missed (best overlap: {row['match']})",
            "merged": f"merged with {row['with']} into predicted {row['match']}",
            "renumbered": f"found as {row['match']}", "found": "found"}[row["status"]]
    number = level_of(row["label"]) if row["structure"] == "disc" else row["label"]
    return f"{row['series']} {row['structure']} {number}{level}: {what}, Dice {row['dice']:.2f}"
