"""Prediction with a trained run: its network, weights, preprocessing and post-processing (`Predictor`), and one
scan segmented on its own grid (`predict_file`, `python -m helpers predict`). It reads the run's record
(helpers/training/run_record.py) and checkpoint, never the training loop.

Prediction uses the run's own preprocessing (from its config) through `resample.preprocess`, the path that made its
training data: resample onto the canonical grid, normalise; then sliding window, then back onto the input's
original grid. An image refused by the bad-value policy (`spider.value_problems`) is never predicted. A damaged
checkpoint, or one of another model or number of classes, stops with the file named
(helpers/training/checkpoints.py).

Used by notebooks 06 (through helpers.evaluation.evaluate) and 07.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import SimpleITK as sitk
import torch

from helpers.core.atomic import write_image_atomic
from helpers.core.errors import DataError, KitError
from helpers.core.paths import RunFiles
from helpers.data.axes import array_to_network, network_to_array
from helpers.data.resample import ResampleSettings, geometry, preprocess, to_original_grid
from helpers.data.spider import require_usable
from helpers.inference.numbering import to_spider_values
from helpers.training.models import autocast, build_model, sliding_window_logits
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

    def structures(self, image: sitk.Image, source: str | Path = "the input image") -> sitk.Image:
        """Structure map (0 background, 1 vertebra, 2 disc, 3 canal) on the input image's own grid;
        DataError naming `source` for an image the bad-value policy refuses."""
        require_usable(image, source)
        grid, _ = preprocess(image, self.settings)
        x = torch.from_numpy(array_to_network(sitk.GetArrayFromImage(grid)))[None, None].to(self.device)
        with torch.no_grad(), autocast(self.device, self.config.get("amp", True)):
            logits = sliding_window_logits(self.model, x, self.patch)
        labels = network_to_array(self.classes[logits.argmax(1)[0].cpu().numpy()]).astype(np.uint8)  # structures
        labels = cleanup(labels, self.cleanup)  # the post-processing chosen on validation (training/postprocess.py)
        pred = sitk.GetImageFromArray(labels)
        pred.CopyInformation(grid)
        return to_original_grid(pred, image)


def _validation_entry(run_dir: Path, iteration: int | None) -> dict:
    """The validation entry of metrics.jsonl at `iteration` (the checkpoint's), or {} when there is none."""
    from helpers.training.run_log import read_metrics

    entries = [e for e in read_metrics(run_dir) if e.get("kind") == "validation" and e["iteration"] == iteration]
    return entries[-1] if entries else {}


def predict_file(image_path: str | Path, run_dir: str | Path, out: str | Path, spider_values: bool = True,
                 series: str = "") -> Path:
    """Segment one scan (an image file or a DICOM series folder, any orientation and spacing) and write the mask on
    the input's own grid: a label image where `out` ends in .nii.gz, .nii, .mha or .nrrd; for DICOM input, a DICOM
    SEG where it ends in .dcm (helpers/inference/dicom_seg.py). A DICOM folder's series is chosen, and said, by
    helpers.data.dicom_series.read_scan (`series`: a UID or a word of its description)."""
    from helpers.data.dicom_series import kind_of, read_scan
    from helpers.inference.dicom_seg import write_dicom_seg

    out = Path(out)
    if out.is_dir():
        raise DataError(out, "is a folder, where the mask's file name is expected; name a file, such as "
                             f"{out / 'mask.nii.gz'}")
    wanted = kind_of(out)
    if not wanted:
        raise DataError(out, "needs a suffix that says the kind of file: .nii.gz, .nii, .mha, .nrrd, or .dcm for "
                             "DICOM SEG (DICOM input)")
    scan = read_scan(image_path, series)
    if wanted == "dicom" and scan.kind != "dicom":
        raise DataError(out, "DICOM SEG needs a DICOM series as input; write .nii.gz, .mha or .nrrd instead")
    if scan.why:
        print(f"{scan.source}: {scan.why}")
    require_usable(scan.image, image_path)  # before the network is loaded
    predictor = Predictor(run_dir)
    structures = predictor.structures(scan.image, image_path)
    numbered = spider_values or wanted == "dicom"  # DICOM SEG: one segment per numbered vertebra and disc
    result = to_spider_values(structures) if numbered else structures
    if geometry(result)["size"] != list(scan.image.GetSize()):
        raise KitError("internal error: prediction is not on the input grid")
    if numbered:
        from helpers.data.labels import name_levels

        print(f"levels: {name_levels(np.unique(sitk.GetArrayViewFromImage(result)))[1]}")
    if wanted == "dicom":
        return write_dicom_seg(result, scan.files, out, predictor.config["model"])
    write_image_atomic(result, out)
    return out
