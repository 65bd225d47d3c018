"""A MONAI decathlon-style datalist split by patient, with a leakage check on every write.

Parts: `training` and `validation` (used to train and to choose a model) and `test` (held out, never used
to choose a model). With SPIDER's `subset` column: the official `validation` patients form `test`, and
`validation` is a seeded fifth of the official `training` patients. Without it: a seeded split.
`skipped` lists every series that resampling refused ('path: reason'), so none goes missing unsaid.
`load_datalist` reads one back for training, with a clear error for every kind of bad datalist.

Used by notebook 04 (writing) and notebook 05 (reading, through helpers.training.loop).
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import numpy as np

from helpers.core.atomic import write_text_atomic
from helpers.core.errors import DataError, KitError
from helpers.data.resample import ResampleSettings, read_manifest

PARTS = ("training", "validation", "test")
KEYS = ("image", "label")  # what every entry names


class LeakageError(KitError):
    """A patient appears in more than one part of a datalist."""


def check_no_leakage(datalist: dict) -> None:
    """Raise LeakageError naming every patient found in two parts."""
    seen: dict[int, str] = {}
    leaks = set()
    for part in PARTS:
        for item in datalist.get(part, []):
            pid = int(item["patient"])
            if seen.setdefault(pid, part) != part:
                leaks.add((pid, seen[pid], part))
    if leaks:
        detail = ", ".join(f"patient {p} in {a} and {b}" for p, a, b in sorted(leaks))
        raise LeakageError(f"patient leakage: {detail}; split by patient, not by series")


def _split_patients(patients: list[int], fraction: float, rng) -> tuple[list[int], list[int]]:
    patients = sorted(patients)
    n = int(round(fraction * len(patients)))
    n = max(n, 1) if len(patients) >= 3 else n
    chosen = set(int(p) for p in rng.permutation(patients)[:n])
    return [p for p in patients if p not in chosen], sorted(chosen)


def build_datalist(records: list[dict], seed: int = 0, folds: int = 0, validation_fraction: float = 0.2,
                   test_fraction: float = 0.2) -> dict:
    """Assign each series to a part by its patient; `folds` > 1 adds a `fold` index to training/validation."""
    rng = np.random.default_rng(seed)
    patients = sorted({r["patient"] for r in records})
    subsets = {r["patient"]: r.get("subset", "") for r in records}
    official = any(s in ("training", "validation") for s in subsets.values())
    if official:
        test = [p for p in patients if subsets[p] == "validation"]
        pool = [p for p in patients if subsets[p] != "validation"]
        source = "official SPIDER subsets (test = the official validation patients)"
    else:
        pool, test = _split_patients(patients, test_fraction, rng)
        source = f"seeded split by patient (seed {seed})"
    part_of = {p: "test" for p in test}
    fold_of = {}
    if folds > 1:
        order = [int(p) for p in rng.permutation(pool)]
        fold_of = {p: i % folds for i, p in enumerate(order)}
        part_of.update({p: "validation" if fold_of[p] == 0 else "training" for p in pool})
    else:
        train, val = _split_patients(pool, validation_fraction, rng)
        part_of.update({p: "training" for p in train} | {p: "validation" for p in val})
    datalist = {"description": f"SPIDER lumbar spine, split by patient: {source}", "split": source,
                "labels": None, **{part: [] for part in PARTS}}
    for r in sorted(records, key=lambda r: (r["patient"], r["series"])):
        item = {"image": r["image"], "label": r["label"], "patient": r["patient"], "series": r["series"],
                "sequence": r["sequence"]}
        if r["patient"] in fold_of:
            item["fold"] = fold_of[r["patient"]]
        datalist[part_of[r["patient"]]].append(item)
    return datalist


def write_datalist(prep_dir: str | Path, out: str | Path, seed: int = 0, folds: int = 0) -> dict:
    """Datalist of a resampled folder, paths relative to the JSON's folder; checked for leakage, then written."""
    from helpers.data.labels import STRUCTURES

    prep_dir, out = Path(prep_dir).resolve(), Path(out).resolve()
    manifest = read_manifest(prep_dir)
    records = manifest["series"]
    if not records:
        raise KitError(f"{prep_dir / 'manifest.json'} lists no series; did resampling skip them all?")
    datalist = build_datalist(records, seed=seed, folds=folds)
    settings = ResampleSettings.from_record(manifest["settings"], prep_dir / "manifest.json")
    if settings.labels == "structures":
        datalist["labels"] = {str(i): name for i, name in enumerate(STRUCTURES)}
    datalist["preprocessing"] = settings.record()
    datalist["skipped"] = manifest.get("skipped", [])  # 'path: reason' of every series resample did not use
    datalist["data"] = {"data_dir": manifest.get("data_dir", ""), "synthetic": manifest.get("synthetic", False),
                        "prep_dir": os.path.relpath(prep_dir, out.parent)}
    for part in PARTS:
        for item in datalist[part]:
            for key in KEYS:
                item[key] = os.path.relpath(prep_dir / item[key], out.parent)
    check_no_leakage(datalist)
    write_text_atomic(out, json.dumps(datalist, indent=1))
    return datalist


def split_table(datalist: dict):
    """Patients, series and sequences per part."""
    import pandas as pd

    rows = []
    for part in PARTS:
        items = datalist.get(part, [])
        seqs = Counter(i["sequence"] for i in items)
        rows.append({"part": part, "patients": len({i["patient"] for i in items}), "series": len(items),
                     **{f"{s} series": seqs.get(s, 0) for s in ("t1", "t2", "t2_SPACE")}})
    return pd.DataFrame(rows).set_index("part")


def series_split_leaks(records: list[dict], validation_fraction: float = 0.2, seed: int = 0) -> tuple[int, int]:
    """The predecessor project's mistake, measured: split *series* at random; how many validation patients also
    train?"""
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(records))
    n_val = max(1, int(round(validation_fraction * len(records))))
    val = {records[i]["patient"] for i in order[:n_val]}
    train = {records[i]["patient"] for i in order[n_val:]}
    return len(val & train), len(val)


def load_datalist(path: str | Path) -> dict[str, list[dict]]:
    """Training and validation lists with absolute paths; a clear error for every kind of bad datalist."""
    from monai.data import load_decathlon_datalist

    from helpers.core.places import read_json_object

    path = Path(path)
    raw = read_json_object(path, "a datalist", "notebook 04 (or `python -m helpers datalist`)")
    out = {}
    for part in ("training", "validation"):
        if not isinstance(raw.get(part), list):
            raise DataError(path, f"has no '{part}' list")
        for i, item in enumerate(raw[part]):
            missing = [k for k in KEYS if k not in item] if isinstance(item, dict) else list(KEYS)
            if missing:
                raise DataError(path, f"{part}[{i}] lacks the key(s) {missing}; each entry needs 'image' and 'label'")
        out[part] = load_decathlon_datalist(str(path), data_list_key=part) if raw[part] else []
        for item in out[part]:
            for key in KEYS:
                if not Path(item[key]).is_file():
                    raise DataError(item[key], f"listed in {path} ({part}) but not found")
    if not out["training"]:
        raise DataError(path, "the training list is empty")
    out["preprocessing"] = raw.get("preprocessing", {})
    out["data"] = raw.get("data", {})
    return out
