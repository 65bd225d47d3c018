"""Score a trained run the way the SPIDER challenge does, on each series' own grid: every series of a part
predicted (helpers/inference/predict.py's `Predictor`), then scored. An image refused by the bad-value policy
(`spider.value_problems`) is skipped with the reason and the others are scored. Per structure (background
excluded): Dice, 95th-percentile Hausdorff distance and average symmetric surface distance, in mm; per instance,
the SPIDER challenge's figures (`challenge.py`) on the predictions numbered into SPIDER values
(helpers/inference/numbering.py).

Used by notebook 06.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from helpers.core.atomic import write_image_atomic, write_text_atomic
from helpers.core.errors import DataError, KitError
from helpers.core.paths import EvalFiles, RunFiles
from helpers.data.axes import numpy_order
from helpers.data.labels import BACKGROUND, FOREGROUND, STRUCTURES, structure_lut
from helpers.data.spider import read_image, read_mask, structure_mask
from helpers.evaluation.challenge import Instance, instance_work, scan_metrics, score_images
from helpers.evaluation.dice import dice, grouped, joint_counts, predecessor_score
from helpers.evaluation.distances import (
    BorderSet,
    JobPool,
    Work,
    directed_distances,
    symmetric_distances,
)
from helpers.evaluation.stats import json_number, summarise
from helpers.inference.numbering import renumbered, to_spider_values
from helpers.inference.predict import Predictor
from helpers.training.postprocess import cleanup


# ---------------------------------------------------------------- metrics
def semantic_work(ref_borders: BorderSet, pred_borders: BorderSet, spacing_zyx,
                  cleaned: BorderSet | None = None) -> Work:
    """The surface distances behind HD95 and ASSD per structure, as one job per structure: borders by erosion with
    face connectivity (`BorderSet(..., connectivity=1)`), as MONAI's `compute_hausdorff_distance(percentile=95)` and
    symmetric `compute_average_surface_distance` find them; with `cleaned` (`pred_borders.cleaned(...)`),
    those of the cleaned prediction too: its border points are some of the raw prediction's, so their distances
    to the reference are the raw ones kept, and only the reference's distances to them are measured again.
    The answer: per structure, (to reference, to prediction) raw and cleaned, or None where a side is empty."""
    def job(index: int):
        raw = clean = None
        if index in ref_borders.points and index in pred_borders.points:
            raw = symmetric_distances(ref_borders, index, pred_borders, index, spacing_zyx)
        if raw is not None and cleaned is not None and index in cleaned.points:
            clean = (raw[0][cleaned.kept[index]],
                     directed_distances(ref_borders, index, cleaned, index, spacing_zyx))
        return raw, clean

    indices = [index for index in range(len(STRUCTURES)) if index != BACKGROUND]
    return Work([partial(job, index) for index in indices], lambda results: dict(zip(indices, results)))


def semantic_row(joint: np.ndarray, distances: dict, which: int = 0) -> dict[str, float]:
    """Dice, HD95 and ASSD (mm) per structure from the joint counts and `semantic_work`'s distances (`which`: 0 raw,
    1 cleaned): the 95th percentile of each direction, the larger of the two; the mean of both directions. Distances
    are NaN where a side is empty."""
    out = {}
    for index, pair in distances.items():
        name = STRUCTURES[index]
        out[f"dice_{name}"] = dice(joint, index)
        if pair[which] is not None:
            to_ref, to_pred = pair[which]
            out[f"hd95_{name}"] = float(max(np.percentile(to_ref, 95), np.percentile(to_pred, 95)))
            out[f"assd_{name}"] = float(np.concatenate([to_ref, to_pred]).mean())
        else:
            out[f"hd95_{name}"] = out[f"assd_{name}"] = float("nan")
    return out


def reference_structures(record: dict) -> tuple[sitk.Image, sitk.Image]:
    """A resampled series' raw image and its reference mask as structures (0-3), on the original grid."""
    image = read_image(record["source_image"])
    structures = structure_mask(read_mask(record["source_mask"], image))
    structures.CopyInformation(image)  # the image's exact grid (the mask's agrees within read_mask's tolerance)
    return image, structures


# ---------------------------------------------------------------- evaluation of a datalist part
def score_series(reference: sitk.Image, predicted: sitk.Image, extra: tuple[Work, ...] = ()
                 ) -> tuple[dict, sitk.Image, list[Instance], list]:
    """Everything `evaluate` measures for one series, from its reference mask (SPIDER values) and a predicted
    structure map on the same grid: the map numbered into SPIDER values, the semantic metrics (raw and after
    cleanup), the predecessor's number, and the challenge's instance figures (both variants); with the answers of
    `extra` work, run in the same pool. The numbering runs in the pool while the semantic part is prepared,
    and the semantic distances while the instances' borders are found."""
    from helpers.data.labels import to_structures

    with JobPool() as pool:
        numbered = pool.submit(partial(to_spider_values, predicted))
        extras = [pool.work(work) for work in extra]
        ref_spider, pred = sitk.GetArrayFromImage(reference), sitk.GetArrayFromImage(predicted)
        ref, cleaned = to_structures(ref_spider), cleanup(pred)
        spacing = numpy_order(reference.GetSpacing())
        pred_borders = BorderSet(pred, connectivity=1)
        semantic = pool.work(semantic_work(BorderSet(ref, connectivity=1), pred_borders, spacing,
                                           pred_borders.cleaned(cleaned)))
        spider = numbered()
        spider_array = sitk.GetArrayFromImage(spider)
        joint = joint_counts(ref_spider, spider_array, 256)  # one count for the predecessor, instances, structures
        instances = pool.work(instance_work(ref_spider, spider_array, reference.GetSpacing(), joint=joint))
        distances, instances = semantic(), instances()
        extras = [answer() for answer in extras]
    row = semantic_row(grouped(joint, structure_lut()), distances)
    row["predecessor_score"] = predecessor_score(ref_spider, spider_array, joint=joint)
    cleaned_row = semantic_row(joint_counts(ref, cleaned, len(STRUCTURES)), distances, which=1)
    row.update({f"clean_{k}": v for k, v in cleaned_row.items()})
    row.update(scan_metrics(instances, "challenge"))
    row.update({f"corrected_{k}": v for k, v in scan_metrics(instances, "corrected").items()})
    return row, spider, instances, extras


def evaluate_series(reference: sitk.Image, predicted: sitk.Image, out: EvalFiles, stem: str
                    ) -> tuple[dict, list[Instance], list[Instance]]:
    """What `evaluate` does with one prediction: score it (`score_series`), write its structure map and its SPIDER
    values (`out.structures`, `out.predictions`), and score the reference against its own renumbered structures
    (what numbering alone costs; in the same pool). Returns the metrics row and both sets of challenge instances."""
    check = Work([lambda: score_images(reference, renumbered(reference), variants=())], lambda r: r[0])
    row, spider, instances, (numbering,) = score_series(reference, predicted, extra=(check,))
    write_image_atomic(predicted, out.structures / f"{stem}.mha")
    write_image_atomic(spider, out.predictions / f"{stem}.mha")
    return row, instances, numbering  # the numbering check: Dice and detection


@dataclass
class Evaluation:
    """One evaluated part of a run: the per-series table, its summary, the challenge's figures, every reference
    instance's fate (helpers/evaluation/levels.py), the series skipped and where each file lies."""

    part: str
    table: pd.DataFrame
    summary: dict
    challenge: dict
    instances: pd.DataFrame
    files: EvalFiles

    @property
    def skipped(self) -> list[str]:
        return self.summary.get("skipped", [])


def read_evaluation(run_dir: str | Path, part: str = "test") -> Evaluation:
    """An evaluation as `evaluate` left it on disk (the report reads it so)."""
    from helpers.core.places import existing_file, read_json_object

    files = RunFiles(Path(run_dir)).evaluation(part)
    summary = read_json_object(files.summary, "an evaluation summary", "evaluate (notebook 06)")
    table = pd.read_csv(existing_file(files.metrics, "a metrics table", "evaluate (notebook 06)"))
    if "seed_style" in summary:  # written before the predecessor's score had its own name
        summary.setdefault("predecessor_score", summary.pop("seed_style"))
        table = table.rename(columns={"seed_style": "predecessor_score"})
    challenge = read_json_object(files.challenge, "the challenge's figures", "evaluate (notebook 06)") \
        if files.challenge.is_file() else {}
    instances = pd.read_csv(files.instances, keep_default_na=False, na_values=[""]) \
        if files.instances.is_file() else pd.DataFrame()
    return Evaluation(part, table, summary, challenge, instances, files)


def evaluate(run_dir: str | Path, datalist: str | Path | None = None, part: str = "test",
             progress: bool = True) -> Evaluation:
    """`evaluate_part`, holding the run folder's lock (core/lock.py): no training or other evaluation meanwhile."""
    from helpers.core.lock import folder_lock

    with folder_lock(run_dir, f"evaluating '{part}'"):
        return evaluate_part(run_dir, datalist, part, progress)


def evaluate_part(run_dir: str | Path, datalist: str | Path | None = None, part: str = "test",
                  progress: bool = True) -> Evaluation:
    """Predict every series of `part` and write, under RUN_DIR/eval/<part> (`helpers.core.paths.EvalFiles`): each
    prediction with SPIDER's values and as structures, the per-series metrics, the challenge's figures, every
    reference instance's fate (`helpers.evaluation.levels`) and the summary; return them together."""
    from tqdm.auto import tqdm

    from helpers.core.places import read_json_object
    from helpers.data.resample import read_manifest
    from helpers.evaluation.challenge import document
    from helpers.evaluation.levels import STATUSES, instance_rows

    predictor = Predictor(run_dir)
    datalist = Path(datalist or predictor.config["datalist"])
    raw = read_json_object(datalist, "a datalist", "notebook 04 (or `python -m helpers datalist`)")
    items = raw.get(part)
    if not items:
        raise KitError(f"{datalist} has no series in '{part}'; choose validation or test")
    prep_dir = (datalist.parent / raw["data"]["prep_dir"]).resolve()
    records = {r["series"]: r for r in read_manifest(prep_dir)["series"]}
    out = RunFiles(Path(run_dir)).evaluation(part)
    rows, skipped, scans, numbering = [], [], {}, {}
    for item in tqdm(items, desc=f"evaluating {part}", disable=not progress):
        record = records.get(item["series"])
        if record is None:
            skipped.append(f"{item['series']}: not in {prep_dir / 'manifest.json'}; resample and rewrite the datalist")
            continue
        try:
            image = read_image(record["source_image"])
            reference = read_mask(record["source_mask"], image)
            start = time.perf_counter()
            predicted = predictor.structures(image, record["source_image"])
        except DataError as e:
            skipped.append(str(e))
            continue
        seconds = time.perf_counter() - start
        row, scans[item["series"]], numbering[item["series"]] = evaluate_series(reference, predicted, out,
                                                                                item["series"])
        rows.append({"series": item["series"], "patient": item["patient"], "sequence": item["sequence"],
                     "seconds": seconds, "scoring_seconds": time.perf_counter() - start - seconds, **row})
    if not rows:
        raise KitError(f"no series of '{part}' could be evaluated: " + "; ".join(skipped))
    table = pd.DataFrame(rows)
    challenge = document(scans, reference="source masks of the datalist part", prediction=str(out.predictions))
    write_text_atomic(out.metrics, table.to_csv(index=False))
    write_text_atomic(out.challenge, json.dumps(challenge, indent=1))
    instances = pd.DataFrame([row for stem, found in scans.items() for row in instance_rows(stem, found)])
    write_text_atomic(out.instances, instances.to_csv(index=False))
    summary = evaluation_summary(table, predictor, part)
    counts = instances.groupby(["structure", "status"]).size() if len(instances) else pd.Series(dtype=int)
    summary["instances"] = {kind: {s: int(counts.get((kind, s), 0)) for s in STATUSES}
                            for kind in ("vertebra", "disc", "canal")}
    summary["numbering_cost"] = document(numbering)["summary"]
    summary["skipped"] = skipped
    write_text_atomic(out.summary, json.dumps(summary, indent=1))
    return Evaluation(part, table, summary, challenge, instances, out)


def evaluation_summary(table: pd.DataFrame, predictor: Predictor | None = None, part: str = "test") -> dict:
    """Mean and sd (`stats.summarise`: NaN left out, sample sd) per structure and metric, raw and cleaned, the
    predecessor's score, and the challenge's figures (`challenge`, and `challenge_corrected`: the corrected variant)."""
    from helpers.evaluation.challenge import CHALLENGE_METRICS, challenge_summary

    summary = {"part": part, "cases": int(len(table)), "metrics": {}}
    if predictor is not None:
        summary.update({"checkpoint": predictor.checkpoint, "model": predictor.config["model"],
                        "cleanup": [STRUCTURES[i] for i in predictor.cleanup],
                        "profile": predictor.config["profile"], "synthetic": predictor.config["data"].get("synthetic")})
    for prefix in ("", "clean_"):
        for metric in ("dice", "hd95", "assd"):
            for name in FOREGROUND:
                col = f"{prefix}{metric}_{name}"
                summary["metrics"][col] = summarise(table[col].astype(float))
    dice_means = [summary["metrics"][f"dice_{n}"]["mean"] for n in FOREGROUND]
    summary["dice_mean_structures"] = json_number(np.nanmean([v if v is not None else np.nan for v in dice_means]))
    summary["predecessor_score"] = summarise(table["predecessor_score"].astype(float))
    for key, prefix in (("challenge", ""), ("challenge_corrected", "corrected_")):
        columns = {f"{prefix}{m}": m for m in CHALLENGE_METRICS}
        if set(columns) <= set(table.columns):
            rows = table[["series", *columns]].rename(columns={"series": "scan", **columns})
            summary[key] = challenge_summary(rows.to_dict("records"))
    summary["seconds_per_case"] = json_number(table["seconds"].mean())
    if "scoring_seconds" in table:
        summary["scoring_seconds_per_case"] = json_number(table["scoring_seconds"].mean())
    return summary

