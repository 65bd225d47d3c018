"""The SPIDER challenge's instance scoring, as its public evaluation code computes it, and a corrected variant.

Rules, checked against the challenge's own code (github.com/DIAGNijmegen/SPIDER-Evaluation, `evaluation.py`),
per scan on the reference's grid:

- each reference label is matched to the predicted label it overlaps most (background ignored, ties to the
  lower value); no one-to-one constraint, so two reference vertebrae may share one predicted label;
- Dice of each reference instance against its whole matched label (0 when nothing overlaps);
- a vertebra (1-99) or disc (above 200) with Dice below 0.1 is *missed*: it lowers the detection rate and
  is left out of its structure's mean Dice; the canal (100) has its own Dice; labels 101-200 (partially
  visible vertebrae 101-125) count only in the overall figures;
- overall Dice: the mean over every reference label of the scan, missed ones included (as 0 or low);
- symmetric average surface distance per matched instance: border voxels by erosion with full
  connectivity, the distances from each border to the other concatenated and averaged; missed instances
  that still overlap keep their distance;
- over scans: mean and sample sd (pandas), NaN left out.

Quirks of the challenge's code, reproduced by the `challenge` variant (it gives the leaderboard's numbers)
and mended by the `corrected` variant:

1. spacing order: it passes `GetSpacing()` (x, y, z) to arrays indexed (z, y, x), so on anisotropic scans
   the distances are scaled along the wrong axes. Corrected: spacing in array order.
2. an instance with no overlap at all gets ASD NaN, which makes its structure's ASD and the overall ASD NaN
   for the whole scan, so that scan silently drops out of the ASD means. Corrected: the mean over the
   instances that have a match (the detection rate reports the misses).
3. when every vertebra (or disc) is missed, the structure's mean Dice is the mean of nothing (NaN, with a
   warning), so a scan where all were missed drops out of the Dice mean instead of scoring 0. Corrected: 0.
4. a reference without a spinal canal reports 999 for its canal Dice and ASD, and 999 enters the mean.
   Corrected: NaN (not applicable).
5. a reference without vertebrae or discs divides by zero, and an empty reference fails on an unset name:
   the challenge's code crashes. Both variants here report NaN for what cannot be computed.
6. it only compares array shapes (and then crashes on a mismatch); origin and direction are not checked.
   Here a prediction on another grid is an error that names both files.

Used by notebook 06 (and `python -m helpers score`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from helpers.core.errors import DataError
from helpers.data.axes import numpy_order
from helpers.data.labels import CANAL_LABEL, DISC_LABELS, PARTIAL_VERTEBRA_LABELS, VERTEBRA_LABELS, unknown_labels
from helpers.evaluation.dice import dice as dice_score
from helpers.evaluation.dice import joint_counts
from helpers.evaluation.distances import BorderSet, Work, directed_distances, distances_to, run_work
from helpers.evaluation.stats import json_number, mean_sd, summarise

CHALLENGE_METRICS: tuple[str, ...] = (
    "DiceScoreVertebrae", "DiceScoreDiscs", "DiceScoreSpinalCanal", "OveralDiceScore",
    "DetectionRateVertebrae", "DetectionRateDiscs", "ASDVertebrae", "ASDDiscs", "ASDSpinalCanal", "OveralASD",
)  # spelled as the challenge spells them (sic: "Overal"), so results line up with its leaderboard
VARIANTS: tuple[str, ...] = ("challenge", "corrected")
DETECTION_THRESHOLD = 0.1
NO_CANAL = 999.0  # what the challenge's code reports for the canal when the reference has none
_MAX_VALUE = 256  # label values are below this once checked against the label table


@dataclass(frozen=True)
class Instance:
    """One reference label of a scan: what it matched, its Dice and its symmetric ASD (mm) per variant."""

    label: int
    kind: str  # vertebra, disc, canal or partial (101-125: overall figures only)
    match: int  # the predicted label it overlaps most; 0 when it overlaps none
    dice: float
    asd: dict[str, float]  # variant -> mm; NaN without a match


def instance_kind(value: int) -> str:
    """The challenge's group of a reference label: vertebra, disc, canal or partial."""
    if value == CANAL_LABEL:
        return "canal"
    if value in VERTEBRA_LABELS:
        return "vertebra"
    if value in DISC_LABELS:
        return "disc"
    if value in PARTIAL_VERTEBRA_LABELS:
        return "partial"
    raise ValueError(f"{value} is not a SPIDER label value")


def sampling(spacing_xyz: Sequence[float], variant: str) -> tuple[float, ...]:
    """Spacing per array axis (z, y, x) as each variant uses it; the challenge keeps SimpleITK's (x, y, z)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    return tuple(float(s) for s in (spacing_xyz if variant == "challenge" else numpy_order(spacing_xyz)))


def score_instances(reference: np.ndarray, prediction: np.ndarray, spacing_xyz: Sequence[float],
                    variants: Iterable[str] = VARIANTS, joint: np.ndarray | None = None) -> list[Instance]:
    """Match, Dice and ASD of every reference label; arrays indexed (z, y, x) as SimpleITK returns them
    (`joint`: their `joint_counts(..., 256)`, when already counted)."""
    return run_work(instance_work(reference, prediction, spacing_xyz, variants, joint))[0]


def instance_work(reference: np.ndarray, prediction: np.ndarray, spacing_xyz: Sequence[float],
                  variants: Iterable[str] = VARIANTS, joint: np.ndarray | None = None) -> Work:
    """`score_instances` as independent distance jobs (`surface.run_work` runs them, alone or with
    others): per variant, the instances matched to one predicted label measured to it together, and that label
    measured to each of them."""
    if reference.shape != prediction.shape:
        raise ValueError(f"reference {reference.shape} and prediction {prediction.shape} differ in shape")
    for values in (reference, prediction):
        if values.size and (values.min() < 0 or values.max() >= _MAX_VALUE):
            raise ValueError("label values must lie in 0..255; check them against the label table first")
    reference, prediction = reference.astype(np.int16, copy=False), prediction.astype(np.int16, copy=False)
    if joint is None:
        joint = joint_counts(reference, prediction, _MAX_VALUE)  # one pass: the overlap of every pair of labels
    ref_sizes = joint.sum(1)
    variants = tuple(variants)
    matched = []
    for label in np.flatnonzero(ref_sizes[1:]) + 1:
        overlap = joint[label, 1:]
        match = int(overlap.argmax()) + 1 if overlap.any() else 0  # argmax: ties go to the lower value
        matched.append((int(label), match, dice_score(joint, label, match) if match else 0.0))
    by_match: dict[int, list[int]] = {}
    for label, match, _ in matched:
        if match:
            by_match.setdefault(match, []).append(label)
    jobs, slots = [], []
    if variants and by_match:
        ref_borders, pred_borders = BorderSet(reference, connectivity=3), BorderSet(prediction, connectivity=3)
        for variant in variants:
            spacing = sampling(spacing_xyz, variant)
            for match, labels in by_match.items():  # the instances matched to one label: their far points at once
                jobs.append(partial(distances_to, [ref_borders.points[label] for label in labels], pred_borders,
                                    match, spacing))
                slots.append((variant, tuple(labels)))
                for label in labels:  # each job its own target label: no cache shared between jobs
                    jobs.append(partial(directed_distances, pred_borders, match, ref_borders, label, spacing))
                    slots.append((variant, label))

    def finish(results: list) -> list[Instance]:
        asd = {label: dict.fromkeys(variants, math.nan) for label, _, _ in matched}
        there = {}
        for (variant, key), result in zip(slots, results):
            if isinstance(key, tuple):
                there.update({(variant, label): d for label, d in zip(key, result)})
            else:  # the label's own distances, then the instance's to it, as the challenge concatenates them
                asd[key][variant] = float(np.concatenate([result, there[(variant, key)]]).mean())
        return [Instance(label, instance_kind(label), match, dice, asd[label]) for label, match, dice in matched]

    return Work(jobs, finish)


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else math.nan


def scan_metrics(instances: list[Instance], variant: str = "challenge") -> dict[str, float]:
    """The challenge's ten figures for one scan from its instances, as `variant` computes them."""
    sampling((1, 1, 1), variant)  # checks the name
    if not instances:  # an empty reference: nothing to score (the challenge's code crashes here)
        return dict.fromkeys(CHALLENGE_METRICS, math.nan)
    challenge = variant == "challenge"
    groups = {kind: [i for i in instances if i.kind == kind] for kind in ("vertebra", "disc", "canal")}
    out: dict[str, float] = {}
    for kind, name in (("vertebra", "Vertebrae"), ("disc", "Discs")):
        group = groups[kind]
        detected = [i.dice for i in group if i.dice >= DETECTION_THRESHOLD]
        if detected or challenge or not group:
            out[f"DiceScore{name}"] = _mean(detected)  # quirk 3: all missed -> NaN in the challenge
        else:
            out[f"DiceScore{name}"] = 0.0
        out[f"DetectionRate{name}"] = len(detected) / len(group) if group else math.nan
        distances = [i.asd.get(variant, math.nan) for i in group]
        out[f"ASD{name}"] = _mean(distances) if challenge else _nanmean(distances)  # quirk 2
    canal = groups["canal"]
    absent = NO_CANAL if challenge else math.nan  # quirk 4
    out["DiceScoreSpinalCanal"] = canal[0].dice if canal else absent
    out["ASDSpinalCanal"] = canal[0].asd.get(variant, math.nan) if canal else absent
    out["OveralDiceScore"] = _mean([i.dice for i in instances])
    every = [i.asd.get(variant, math.nan) for i in instances]
    out["OveralASD"] = _mean(every) if challenge else _nanmean(every)
    return {name: out[name] for name in CHALLENGE_METRICS}


def _nanmean(values: list[float]) -> float:
    kept = [v for v in values if not math.isnan(v)]
    return _mean(kept)


# ---------------------------------------------------------------- files
def read_labels(path: str | Path) -> sitk.Image:
    """A SPIDER-valued mask; DataError naming the file when it cannot be read or holds other values."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "not found")
    try:
        image = sitk.ReadImage(str(path))
    except RuntimeError as e:
        raise DataError(path, f"cannot be read as an image ({str(e).strip().splitlines()[-1]})") from None
    if image.GetNumberOfComponentsPerPixel() != 1 or image.GetDimension() != 3:
        raise DataError(path, "is not a 3D single-channel label map")
    values = np.unique(sitk.GetArrayViewFromImage(image))
    if not np.all(np.equal(np.mod(values, 1), 0)):
        raise DataError(path, "holds non-integer values; a label map holds SPIDER's label values")
    bad = unknown_labels(values.astype(np.int64))
    if bad:
        shown = ", ".join(map(str, bad[:10])) + (" ..." if len(bad) > 10 else "")
        raise DataError(path, f"unknown label values {shown}; SPIDER uses 0, 1-25, 100, 101-125, 201-225")
    return image


def check_same_grid(reference: sitk.Image, prediction: sitk.Image, reference_path: Path | str,
                    prediction_path: Path | str, tolerance: float = 1e-3) -> None:
    """DataError naming the prediction unless it lies on the reference's grid (size, spacing, origin, axes)."""
    problems = []
    if reference.GetSize() != prediction.GetSize():
        problems.append(f"size {prediction.GetSize()} instead of {reference.GetSize()}")
    for what in ("Spacing", "Origin", "Direction"):
        a, b = getattr(reference, f"Get{what}")(), getattr(prediction, f"Get{what}")()
        if not np.allclose(a, b, atol=tolerance, rtol=tolerance):
            shown = [tuple(round(v, 4) for v in x) for x in (b, a)]
            problems.append(f"{what.lower()} {shown[0]} instead of {shown[1]}")
    if problems:
        raise DataError(prediction_path, f"is on another grid than the reference {reference_path}: "
                        + "; ".join(problems) + ". Resample it onto the reference's grid (nearest neighbour)")


def score_images(reference: sitk.Image, prediction: sitk.Image, variants: Iterable[str] = VARIANTS) -> list[Instance]:
    """Instances of one scan from two images already checked to share a grid (no `variants`: no distances)."""
    return score_instances(sitk.GetArrayViewFromImage(reference), sitk.GetArrayViewFromImage(prediction),
                           reference.GetSpacing(), variants)


def score_files(reference_path: str | Path, prediction_path: str | Path) -> list[Instance]:
    """Read, check and score one prediction against its reference mask."""
    reference, prediction = read_labels(reference_path), read_labels(prediction_path)
    check_same_grid(reference, prediction, reference_path, prediction_path)
    return score_images(reference, prediction)


def score_folders(reference_dir: str | Path, prediction_dir: str | Path, progress: bool = False) -> dict:
    """Score every <stem>.mha of PREDICTION_DIR against REFERENCE_DIR/<stem>.mha; the JSON document `score` writes."""
    from tqdm.auto import tqdm

    reference_dir, prediction_dir = Path(reference_dir), Path(prediction_dir)
    for folder in (reference_dir, prediction_dir):
        if not folder.is_dir():
            raise DataError(folder, "is not a folder")
    predictions = sorted(prediction_dir.glob("*.mha"))
    if not predictions:
        raise DataError(prediction_dir, "holds no .mha predictions")
    missing = [p.name for p in predictions if not (reference_dir / p.name).is_file()]
    if missing:
        raise DataError(reference_dir / missing[0], f"not found: no reference mask for {prediction_dir / missing[0]}"
                        + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    scans = {}
    for path in tqdm(predictions, desc="scoring", disable=not progress):
        scans[path.stem] = score_files(reference_dir / path.name, path)
    return document(scans, reference=str(reference_dir), prediction=str(prediction_dir))


def scan_rows(scans: dict[str, list[Instance]], variant: str) -> list[dict]:
    """One record per scan: `scan` (the stem) then the challenge's metric names."""
    return [{"scan": stem, **scan_metrics(instances, variant)} for stem, instances in scans.items()]


def challenge_summary(rows: list[dict]) -> dict[str, dict]:
    """Mean and sd over scans of each metric, as the challenge computes them (pandas: NaN skipped, sd ddof 1): the
    kit's one `stats.summarise`."""
    return {name: summarise(row.get(name) for row in rows) for name in CHALLENGE_METRICS}


def document(scans: dict[str, list[Instance]], **about) -> dict:
    """The challenge's figures (`scans`, `summary`) with the corrected variant beside them (`corrected`)."""
    doc = {**about, "variant": "challenge"}
    for variant in VARIANTS:
        rows = scan_rows(scans, variant)
        block = {"scans": [{k: json_number(v) if k != "scan" else v for k, v in r.items()} for r in rows],
                 "summary": challenge_summary(rows)}
        if variant == "challenge":
            doc.update(block)
        else:
            doc[variant] = {"variant": variant, **block}
    return doc


def numbering_cost(mask_paths: list[Path]) -> dict:
    """What the kit's instance numbering alone costs (helpers/inference/numbering.py): reference masks reduced to
    structures, numbered again, and scored against themselves, per scan and summarised."""
    from helpers.inference.numbering import renumbered

    scans = {}
    for path in mask_paths:
        mask = read_labels(path)
        scans[Path(path).stem] = score_images(mask, renumbered(mask))
    return document(scans, what="reference masks -> structures -> kit numbering, scored against the reference")


def table(doc: dict, variant: str = "challenge") -> pd.DataFrame:
    """Per-scan table of one variant from a `document`."""
    block = doc if variant == "challenge" else doc[variant]
    frame = pd.DataFrame(block["scans"], columns=["scan", *CHALLENGE_METRICS])
    return frame.astype(dict.fromkeys(CHALLENGE_METRICS, float))


def structure_table(doc: dict) -> pd.DataFrame:
    """Per structure: Dice, detection rate and ASD (challenge), and ASD and Dice of the corrected variant; mean ±
    sd over scans, with (n=...) where scans were left out for NaN."""
    rows = []
    for structure, suffix, detection in (("vertebrae", "Vertebrae", True), ("discs", "Discs", True),
                                         ("spinal canal", "SpinalCanal", False), ("overall", None, False)):
        dice = "OveralDiceScore" if suffix is None else f"DiceScore{suffix}"
        asd = "OveralASD" if suffix is None else f"ASD{suffix}"
        rows.append({"structure": structure, "Dice": mean_sd(doc["summary"][dice]),
                     "detection rate": mean_sd(doc["summary"][f"DetectionRate{suffix}"]) if detection else "",
                     "ASD (mm)": mean_sd(doc["summary"][asd]),
                     "ASD corrected (mm)": mean_sd(doc["corrected"]["summary"][asd]),
                     "Dice corrected": mean_sd(doc["corrected"]["summary"][dice])})
    return pd.DataFrame(rows)

