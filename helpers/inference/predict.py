"""Prediction with a trained run: its network, weights, preprocessing and post-processing (`Predictor`), one scan
predicted with its levels named and what to check (`predict_scan`, `Prediction`), and one scan segmented on its own
grid into a file (`predict_file`, `python -m helpers predict`). It reads the run's record
(helpers/training/run_record.py) and checkpoint, never the training loop.

Prediction uses the run's own preprocessing (from its config) through `resample.preprocess`, the path that made its
training data: resample onto the canonical grid, normalise; then sliding window, then back onto the input's
original grid. A volume whose logits would not fit in half the free memory is predicted in overlapping windows
(slabs) instead of failing. An image refused by the bad-value policy (`spider.value_problems`) is never predicted.
A damaged checkpoint, or one of another model or number of classes, stops with the file named
(helpers/training/checkpoints.py).

Used by notebooks 06 (through helpers.evaluation.evaluate) and 07.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from helpers.core.atomic import write_image_atomic
from helpers.core.errors import DataError, KitError
from helpers.core.paths import RunFiles
from helpers.data.axes import array_to_network, network_to_array
from helpers.data.dicom_series import InputScan
from helpers.data.differences import check_line, prediction_differences, scan_differences
from helpers.data.labels import STRUCTURES, name_levels, structure_of
from helpers.data.resample import ResampleSettings, geometry, preprocess, to_original_grid
from helpers.data.spider import require_usable
from helpers.inference.numbering import to_spider_values
from helpers.training.models import SLIDING_WINDOW, autocast, build_model, sliding_window_logits
from helpers.training.postprocess import chosen_cleanup, cleanup


class Predictor:
    """A trained run ready to segment any series: its network, weights and preprocessing."""

    def __init__(self, run_dir: str | Path, checkpoint: str = "best", device: str | None = None):
        from helpers.training.checkpoints import load_weights, read_checkpoint
        from helpers.training.run_record import read_run_record
        from helpers.training.transforms import class_structures

        self.run_dir = Path(run_dir)
        files = RunFiles(self.run_dir)
        self.config = read_run_record(self.run_dir)
        path = files.checkpoint(checkpoint)
        if not path.is_file():
            path = files.checkpoint("last")
        if not path.is_file():
            raise DataError(self.run_dir, "holds no checkpoint yet; train first")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.patch = tuple(int(v) for v in self.config["patch_size"])
        self.classes = class_structures(self.config)
        self.model = build_model(self.config["model"], self.patch, self.config["model_options"],
                                 out_channels=len(self.classes)).to(self.device)
        last = files.checkpoint("last")
        todo = "Copy an intact copy back" + (f", or move it out of {self.run_dir} to use {last.name} instead"
                                            if path != last and last.is_file() else "")
        network = f"this run's {self.config['model']} with {len(self.classes)} classes (its config.json)"
        state = read_checkpoint(path, ("model",), todo)
        load_weights(self.model, state["model"], path, network)
        self.model.eval()
        self.checkpoint = path.name
        self.cleanup = chosen_cleanup(_validation_entry(self.run_dir, state.get("iteration")))
        self.settings = ResampleSettings.from_record(self.config["preprocessing"], files.config)
        self.windows = 0  # how many windows the last volume was predicted in (1: whole; more: too large for memory)

    def structures(self, image: sitk.Image, source: str | Path = "the input image") -> sitk.Image:
        """Structure map (0 background, 1 vertebra, 2 disc, 3 canal) on the input image's own grid;
        DataError naming `source` for an image the bad-value policy refuses. A volume whose logits would not fit
        in memory is predicted in overlapping windows (`self.windows` says how many; 1 for the whole volume)."""
        require_usable(image, source)
        grid, _ = preprocess(image, self.settings)
        labels = network_to_array(self._labels(array_to_network(sitk.GetArrayFromImage(grid))))  # structures
        labels = cleanup(labels, self.cleanup)  # the post-processing chosen on validation (training/postprocess.py)
        pred = sitk.GetImageFromArray(labels)
        pred.CopyInformation(grid)
        return to_original_grid(pred, image)

    def _labels(self, volume: np.ndarray) -> np.ndarray:
        """Structure indices (uint8) of a volume in the network's axis order, by the sliding window: on the whole
        volume where its logits fit in `memory_budget`, else slab by slab along the axis with the most patches. Each
        slab starts on the sliding window's own grid of positions and carries a whole patch of context on either
        side, so every voxel kept is covered by the same windows as in the whole volume: the same labels."""
        need = volume.size * bytes_per_voxel(len(self.classes))
        budget = memory_budget(self.device)
        if need <= budget:
            self.windows = 1
            return self._window(volume)
        axis = int(np.argmax(np.array(volume.shape) / np.array(self.patch)))
        length, margin = volume.shape[axis], self.patch[axis]
        interval = max(1, int(margin * (1 - SLIDING_WINDOW["overlap"])))  # MONAI's step between windows
        fits = int(budget // (need / length)) - 2 * margin
        step = max(interval, fits // interval * interval)
        out = np.empty(volume.shape, np.uint8)
        starts = range(0, length, step)
        for start in starts:
            stop = min(length, start + step)
            lo, hi = max(0, start - margin), min(length, stop + margin)
            part = self._window(np.take(volume, np.arange(lo, hi), axis=axis))
            keep = [slice(None)] * 3
            keep[axis] = slice(start - lo, stop - lo)
            target = [slice(None)] * 3
            target[axis] = slice(start, stop)
            out[tuple(target)] = part[tuple(keep)]
        self.windows = len(starts)
        return out

    def _window(self, volume: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(np.ascontiguousarray(volume))[None, None].to(self.device)
        with torch.no_grad(), autocast(self.device, self.config.get("amp", True)):
            logits = sliding_window_logits(self.model, x, self.patch)
        index = logits.argmax(1)[0].cpu().numpy().astype(np.uint8)
        del logits
        return self.classes.astype(np.uint8)[index]


MEMORY_SHARE = 0.5  # of the free memory, at most, for one volume's prediction; more: predicted in windows


def bytes_per_voxel(classes: int) -> int:
    """Memory one voxel of the network's grid takes while predicted: the input, the logits and the window count
    (float32), the argmax (int64) and the labels (uint8)."""
    return 4 * (classes + 2) + 8 + 1


def memory_budget(device: torch.device) -> int:
    """Bytes one prediction may use: MEMORY_SHARE of the free host (or GPU) memory; SPIDER_KIT_PREDICT_MEMORY (bytes)
    sets it, to try the windows on a small volume."""
    import os

    from helpers.training.resources import free_ram

    if os.environ.get("SPIDER_KIT_PREDICT_MEMORY"):
        return int(float(os.environ["SPIDER_KIT_PREDICT_MEMORY"]))
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0] * MEMORY_SHARE)
    return int(free_ram() * MEMORY_SHARE)


def _validation_entry(run_dir: Path, iteration: int | None) -> dict:
    """The validation entry of metrics.jsonl at `iteration` (the checkpoint's), or {} when there is none."""
    from helpers.training.run_log import read_metrics

    entries = [e for e in read_metrics(run_dir) if e.get("kind") == "validation" and e["iteration"] == iteration]
    return entries[-1] if entries else {}


@dataclass
class Prediction:
    """One scan predicted: its structures and SPIDER values on its own grid, the levels by name, what to check."""

    scan: InputScan
    structures: sitk.Image  # 0 background, 1 vertebra, 2 disc, 3 canal
    spider: sitk.Image  # SPIDER's values: vertebrae 1.., discs 201.., canal 100
    names: dict[int, str] = field(default_factory=dict)  # {SPIDER value: 'L5'}, where levels can be named
    levels_why: str = ""
    warnings: list[str] = field(default_factory=list)  # what differs from what the model saw, and where to look
    windows: int = 1

    @property
    def values(self) -> list[int]:
        return [int(v) for v in np.unique(sitk.GetArrayViewFromImage(self.spider)) if v]

    def levels(self) -> str:
        """'L5, L4, L3 (vertebrae); L5/S1, L4/L5 (discs)' where named, else SPIDER's numbers and why not."""
        vertebrae = [v for v in self.values if structure_of(v) == "vertebra"]
        discs = [v for v in self.values if structure_of(v) == "disc"]
        if self.names:
            return (", ".join(self.names[v] for v in vertebrae) + " (vertebrae); "
                    + ", ".join(self.names[v] for v in discs) + " (discs)")
        return f"not named: {len(vertebrae)} vertebrae, {len(discs)} discs (SPIDER's numbers)" if vertebrae else \
            "no vertebra found"

    def check(self) -> str:
        """The one line of what differs and where to look ('' when nothing does)."""
        return check_line(self.warnings)

    def volumes(self) -> dict[str, float]:
        """Each structure's volume in mL."""
        counts = np.bincount(sitk.GetArrayViewFromImage(self.structures).ravel(), minlength=4)
        voxel_ml = float(np.prod(self.structures.GetSpacing())) / 1000.0
        return {name: round(float(counts[i]) * voxel_ml, 2) for i, name in enumerate(STRUCTURES) if i}

    def summary_row(self) -> dict:
        """What a table of many scans keeps of it (helpers/inference/batch.py)."""
        chosen = self.scan.chosen
        return {"series": (chosen.label() if chosen else self.scan.source.name), "series_uid": self.scan.series_uid,
                "levels": self.levels(), "vertebrae": sum(structure_of(v) == "vertebra" for v in self.values),
                "discs": sum(structure_of(v) == "disc" for v in self.values),
                **{f"{k}_ml": v for k, v in self.volumes().items()}, "warnings": "; ".join(self.warnings)}


def predict_scan(scan: InputScan, predictor: Predictor) -> Prediction:
    """One scan (helpers.data.dicom_series.read_scan) predicted: structures, SPIDER values, levels by name, and
    what differs from what the model saw (helpers/data/differences.py, with what the prediction itself suggests)."""
    structures = predictor.structures(scan.image, scan.source)
    spider = to_spider_values(structures)
    if geometry(spider)["size"] != list(scan.image.GetSize()):
        raise KitError("internal error: prediction is not on the input grid")
    values = np.unique(sitk.GetArrayViewFromImage(spider))
    names, why = name_levels(values)
    vertebrae = sum(structure_of(int(v)) == "vertebra" for v in values if v)
    warnings = scan_differences(scan) + prediction_differences(vertebrae)
    return Prediction(scan, structures, spider, names, why, warnings, predictor.windows)


def predict_file(image_path: str | Path, run_dir: str | Path, out: str | Path, spider_values: bool = True,
                 series: str = "", predictor: Predictor | None = None, log=print) -> Path:
    """Segment one scan (an image file; a DICOM series, study or export folder; a DICOMDIR; a multi-frame file; any
    orientation and spacing) and write the mask on the input's own grid: a label image where `out` ends in .nii.gz,
    .nii, .mha or .nrrd; for DICOM input, a DICOM SEG where it ends in .dcm (helpers/inference/dicom_seg.py). Says
    (`log`) every series found and the one used, by description and UID, and why (helpers/data/dicom_study.py;
    `series`: its UID, number or a word of its description), the levels found, and one `check:` line where the scan
    differs from what the model saw."""
    from helpers.data.dicom_series import kind_of, read_scan
    from helpers.inference.dicom_seg import write_dicom_seg

    out = Path(out)
    if out.is_dir():
        raise DataError(out, "is a folder, where the mask's file name is expected; name a file, such as "
                             f"{out / 'mask.nii.gz'} (to predict every scan inside a folder, give that folder as the "
                             "input)")
    wanted = kind_of(out)
    if not wanted:
        raise DataError(out, "needs a suffix that says the kind of file: .nii.gz, .nii, .mha, .nrrd, or .dcm for "
                             "DICOM SEG (DICOM input)")
    scan = read_scan(image_path, series)
    if wanted == "dicom" and scan.kind != "dicom":
        raise DataError(out, "DICOM SEG needs a DICOM series as input; write .nii.gz, .mha or .nrrd instead")
    for line in (scan.listing(), scan.said()):
        if line:
            log(line)
    require_usable(scan.image, image_path)  # before the network is loaded
    predictor = predictor or Predictor(run_dir)
    result = predict_scan(scan, predictor)
    if result.windows > 1:
        log(f"predicted in {result.windows} windows: the whole volume's logits would not fit in the memory free")
    log(f"levels: {result.levels_why}")
    if result.check():
        log(result.check())
    if wanted == "dicom":
        return write_dicom_seg(result.spider, scan.files, out, predictor.config["model"], frames=scan.frames,
                               log=log)
    write_image_atomic(result.spider if spider_values else result.structures, out)
    return out
