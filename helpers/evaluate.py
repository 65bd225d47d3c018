"""Predict with a trained run and score it the way the SPIDER challenge does, on each series' own grid.

Prediction uses the run's own preprocessing (from its config): reorient, normalise, resample, sliding
window, then back onto the input's original grid. An image refused by the bad-value policy
(`spider.value_problems`) is never predicted: `predict` stops naming it, `evaluate` skips it with the
reason and scores the others. A damaged checkpoint, or one of another model or number of classes, stops
both with the file named (helpers/checkpoints.py). Scores per structure (background excluded): Dice,
95th-percentile Hausdorff distance and average symmetric surface distance, in mm.
"""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk
import torch
from scipy import ndimage

from .errors import DataError, KitError, write_image_atomic, write_text_atomic
from .labels import BACKGROUND, CANAL, CANAL_LABEL, DISC, FOREGROUND, STRUCTURES, VERTEBRA, instance_classes
from .models import build_model, monai_order
from .resample import CANONICAL_ORIENTATION, ResampleSettings, _geometry, _target_grid, normalise, resample_image
from .spider import read_image, read_mask, require_usable


# ---------------------------------------------------------------- the model of a run
class Predictor:
    """A trained run ready to segment any series: its network, weights and preprocessing."""

    def __init__(self, run_dir: str | Path, checkpoint: str = "best", device: str | None = None):
        from .checkpoints import load_weights, read_checkpoint

        self.run_dir = Path(run_dir)
        config_path = self.run_dir / "config.json"
        if not config_path.is_file():
            raise DataError(config_path, "not found; is this a training run folder (python -m helpers train)?")
        self.config = json.loads(config_path.read_text())
        path = self.run_dir / f"checkpoint_{checkpoint}.pt"
        if not path.is_file():
            path = self.run_dir / "checkpoint_last.pt"
        if not path.is_file():
            raise DataError(self.run_dir, "holds no checkpoint yet; train first")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.patch = monai_order(self.config["patch_size"])
        from .train import class_structures

        self.classes = class_structures(self.config)
        self.model = build_model(self.config["model"], self.patch, self.config["model_options"],
                                 out_channels=len(self.classes)).to(self.device)
        last = self.run_dir / "checkpoint_last.pt"
        todo = "Copy an intact copy back" + (f", or move it out of {self.run_dir} to use {last.name} instead"
                                            if path != last and last.is_file() else "")
        network = f"this run's {self.config['model']} with {len(self.classes)} classes (its config.json)"
        load_weights(self.model, read_checkpoint(path, ("model",), todo)["model"], path, network)
        self.model.eval()
        self.checkpoint = path.name
        prep = dict(self.config["preprocessing"])
        prep = {k: tuple(v) if isinstance(v, list) else v for k, v in prep.items()}
        self.settings = ResampleSettings(**prep)

    def structures(self, image: sitk.Image, source: str | Path = "the input image") -> sitk.Image:
        """Structure map (0 background, 1 vertebra, 2 disc, 3 canal) on the input image's own grid;
        DataError naming `source` for an image the bad-value policy refuses."""
        from monai.inferers import sliding_window_inference

        require_usable(image, source)
        canon = sitk.DICOMOrient(image, CANONICAL_ORIENTATION)
        size, spacing, origin = _target_grid(canon, self.settings, self.settings.spacing)
        normed, _ = normalise(canon, self.settings.percentiles, self.settings.intensity)
        grid = resample_image(normed, size, spacing, origin)
        x = torch.from_numpy(sitk.GetArrayFromImage(grid).T.copy())[None, None].to(self.device)  # (AP, SI, LR)
        with torch.no_grad(), torch.autocast(self.device.type, enabled=self.device.type == "cuda"):
            logits = sliding_window_inference(x, self.patch, 4, self.model, overlap=0.25)
        labels = self.classes[logits.argmax(1)[0].cpu().numpy()].T.astype(np.uint8)  # classes -> structures
        pred = sitk.GetImageFromArray(labels)
        pred.CopyInformation(grid)
        return back_to_grid(pred, image)


def back_to_grid(label: sitk.Image, reference: sitk.Image) -> sitk.Image:
    """Nearest-neighbour resampling of a label map onto `reference`'s grid (any orientation)."""
    return sitk.Resample(label, reference, sitk.Transform(), sitk.sitkNearestNeighbor, 0, sitk.sitkUInt8)


# ---------------------------------------------------------------- post-processing
def cleanup(structures: np.ndarray, min_fraction: float = 0.1) -> np.ndarray:
    """Keep the largest canal component, and vertebra/disc components of at least `min_fraction` of the largest."""
    out = structures.copy()
    for value in (VERTEBRA, DISC, CANAL):
        comps, n = ndimage.label(structures == value)
        if n <= 1:
            continue
        sizes = np.bincount(comps.ravel())[1:]
        keep = [np.argmax(sizes) + 1] if value == CANAL else np.nonzero(sizes >= min_fraction * sizes.max())[0] + 1
        out[(comps > 0) & ~np.isin(comps, keep)] = BACKGROUND
    return out


def _levels(binary: np.ndarray, min_fraction: float = 0.3) -> list[tuple[np.ndarray, float]]:
    """Connected components grouped into levels: big components (bodies, discs) each start a level, and
    smaller pieces (posterior elements, fragments) join the level nearest in the superior-inferior axis.
    Returns (mask, centre row) per level; rows grow towards inferior."""
    comps, n = ndimage.label(binary)
    if not n:
        return []
    sizes = np.bincount(comps.ravel())[1:]
    rows = [c[1] for c in ndimage.center_of_mass(np.ones_like(comps), comps, range(1, n + 1))]
    main = [i for i in range(n) if sizes[i] >= min_fraction * sizes.max()]
    owner = {i: i if i in main else min(main, key=lambda m: abs(rows[m] - rows[i])) for i in range(n)}
    return [(np.isin(comps, [j + 1 for j in range(n) if owner[j] == m]), rows[m]) for m in main]


def to_spider_values(structures: sitk.Image) -> sitk.Image:
    """SPIDER's values from a structure map: canal 100, vertebrae 1.. and discs 201.. numbered bottom-up."""
    canon = sitk.DICOMOrient(structures, CANONICAL_ORIENTATION)
    arr = sitk.GetArrayFromImage(canon)  # rows run superior -> inferior
    out = np.zeros(arr.shape, np.int16)
    out[arr == CANAL] = CANAL_LABEL
    vertebrae = sorted(_levels(arr == VERTEBRA), key=lambda level: -level[1])  # lowest first
    for rank, (mask, _) in enumerate(vertebrae):
        out[mask] = min(rank + 1, 25)
    for mask, row in _levels(arr == DISC):
        below = sum(v_row > row for _, v_row in vertebrae)  # the disc lies just above this many vertebrae
        out[mask] = 200 + min(below + 1, 25)
    img = sitk.GetImageFromArray(out)
    img.CopyInformation(canon)
    return sitk.DICOMOrient(img, sitk.DICOMOrientImageFilter.GetOrientationFromDirectionCosines(
        structures.GetDirection()))


# ---------------------------------------------------------------- metrics
def structure_metrics(reference: np.ndarray, prediction: np.ndarray, spacing_zyx) -> dict[str, float]:
    """Dice, HD95 and ASSD (mm) per structure; distances are NaN when a side is empty."""
    from monai.metrics import compute_average_surface_distance, compute_hausdorff_distance

    out = {}
    for index, name in enumerate(STRUCTURES):
        if index == BACKGROUND:
            continue
        ref, pred = reference == index, prediction == index
        total = ref.sum() + pred.sum()
        out[f"dice_{name}"] = float(2 * (ref & pred).sum() / total) if total else float("nan")
        if ref.any() and pred.any():
            a = torch.from_numpy(np.stack([~pred, pred])[None])
            b = torch.from_numpy(np.stack([~ref, ref])[None])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                out[f"hd95_{name}"] = float(compute_hausdorff_distance(a, b, percentile=95, spacing=spacing_zyx)[0, 0])
                out[f"assd_{name}"] = float(compute_average_surface_distance(a, b, symmetric=True,
                                                                            spacing=spacing_zyx)[0, 0])
        else:
            out[f"hd95_{name}"] = out[f"assd_{name}"] = float("nan")
    return out


def seed_style_score(reference_spider: np.ndarray, prediction_spider: np.ndarray, max_level: int = 9) -> float:
    """The seed project's number: one mean Dice over its 20 instance classes, background included."""
    scores = []
    for value in instance_classes(max_level):
        ref, pred = reference_spider == value, prediction_spider == value
        total = ref.sum() + pred.sum()
        if total:
            scores.append(2 * (ref & pred).sum() / total)
    return float(np.mean(scores))


def reference_structures(record: dict) -> tuple[sitk.Image, sitk.Image]:
    """A resampled series' raw image and its reference mask as structures (0-3), on the original grid."""
    from .labels import to_structures

    image = read_image(record["source_image"])
    mask = read_mask(record["source_mask"], image)
    structures = sitk.GetImageFromArray(to_structures(sitk.GetArrayFromImage(mask)))
    structures.CopyInformation(image)
    return image, structures


# ---------------------------------------------------------------- evaluation of a datalist part

def evaluate(run_dir: str | Path, datalist: str | Path | None = None, part: str = "test",
             progress: bool = True) -> pd.DataFrame:
    """Predict every series of `part`, write predictions and per-case metrics under RUN_DIR/eval/<part>."""
    from tqdm.auto import tqdm

    from .labels import to_structures
    from .resample import read_manifest

    predictor = Predictor(run_dir)
    datalist = Path(datalist or predictor.config["datalist"])
    raw = json.loads(datalist.read_text())
    items = raw.get(part)
    if not items:
        raise KitError(f"{datalist} has no series in '{part}'; choose validation or test")
    prep_dir = (datalist.parent / raw["data"]["prep_dir"]).resolve()
    records = {r["series"]: r for r in read_manifest(prep_dir)["series"]}
    out = Path(run_dir) / "eval" / part
    rows, skipped = [], []
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
        spider = to_spider_values(predicted)
        write_image_atomic(predicted, out / "predictions" / f"{item['series']}_structures.mha")
        write_image_atomic(spider, out / "predictions" / f"{item['series']}.mha")
        ref_spider = sitk.GetArrayFromImage(reference)
        ref, pred = to_structures(ref_spider), sitk.GetArrayFromImage(predicted)
        spacing = tuple(reversed(image.GetSpacing()))
        row = {"series": item["series"], "patient": item["patient"], "sequence": item["sequence"],
               "seconds": seconds, **structure_metrics(ref, pred, spacing),
               "seed_style": seed_style_score(ref_spider, sitk.GetArrayFromImage(spider))}
        cleaned = structure_metrics(ref, cleanup(pred), spacing)
        row.update({f"clean_{k}": v for k, v in cleaned.items()})
        rows.append(row)
    if not rows:
        raise KitError(f"no series of '{part}' could be evaluated: " + "; ".join(skipped))
    table = pd.DataFrame(rows)
    table.attrs["skipped"] = skipped
    write_text_atomic(out / "metrics.csv", table.to_csv(index=False))
    summary = summarise(table, predictor, part)
    summary["skipped"] = skipped
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=1))
    return table


def summarise(table: pd.DataFrame, predictor: Predictor | None = None, part: str = "test") -> dict:
    """Mean and sd per structure and metric, raw and cleaned, and the seed-style number."""
    summary = {"part": part, "cases": int(len(table)), "metrics": {}}
    if predictor is not None:
        summary.update({"checkpoint": predictor.checkpoint, "model": predictor.config["model"],
                        "profile": predictor.config["profile"], "synthetic": predictor.config["data"].get("synthetic")})
    for prefix in ("", "clean_"):
        for metric in ("dice", "hd95", "assd"):
            for name in FOREGROUND:
                col = f"{prefix}{metric}_{name}"
                values = table[col].astype(float)
                summary["metrics"][col] = {"mean": _num(values.mean()), "sd": _num(values.std(ddof=0)),
                                           "n": int(values.notna().sum())}
    dice_means = [summary["metrics"][f"dice_{n}"]["mean"] for n in FOREGROUND]
    summary["dice_mean_structures"] = _num(np.nanmean([v if v is not None else np.nan for v in dice_means]))
    summary["seed_style"] = {"mean": _num(table["seed_style"].mean()), "sd": _num(table["seed_style"].std(ddof=0))}
    summary["seconds_per_case"] = _num(table["seconds"].mean())
    return summary


def _num(value) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def predict_file(image_path: str | Path, run_dir: str | Path, out: str | Path, spider_values: bool = True) -> Path:
    """Segment one series (any orientation and spacing); write a mask on the input's own grid."""
    image = read_image(image_path)
    require_usable(image, image_path)  # before the network is loaded
    structures = Predictor(run_dir).structures(image, image_path)
    result = to_spider_values(structures) if spider_values else structures
    if _geometry(result)["size"] != list(image.GetSize()):
        raise KitError("internal error: prediction is not on the input grid")
    write_image_atomic(result, Path(out))
    return Path(out)
