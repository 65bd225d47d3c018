"""A trained run handed on as a MONAI bundle: `python -m helpers export --run RUN --out BUNDLE`.

The bundle is MONAI's layout, run by MONAI's own `python -m monai.bundle run` with no kit installed:
`configs/metadata.json` (versions, classes, the run's metrics, the input and output format),
`configs/inference.json` (the network, its preprocessing and post-processing as MONAI transforms, a sliding
window), `models/model.pt` (the weights), `models/model.ts` (TorchScript, where the network traces),
`docs/README.md` and `LICENSE` (the kit's MIT licence; the data's CC BY 4.0).

What differs from `helpers predict`, on purpose and measured in tests/test_bundle.py: MONAI's `Spacingd` does not
anti-alias before it resamples (the kit smooths along coarsened axes first), MONAI reads NIfTI only without the
`itk` package, and the bundle writes the network's three structures (0-3) as they come: without the run's
post-processing (its component rules; MONAI's KeepLargestConnectedComponentd needs scikit-image, which the kit
does not install) and without SPIDER's instance numbers.

Used by notebook 07 (and `python -m helpers export`).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import torch

from helpers.core.atomic import write_text_atomic
from helpers.core.errors import KitError
from helpers.core.paths import ROOT, RunFiles
from helpers.data.axes import CANONICAL_ORIENTATION
from helpers.data.labels import FOREGROUND, STRUCTURES
from helpers.data.resample import ResampleSettings
from helpers.training.models import SLIDING_WINDOW, network_def

DATA_LICENCE = ("The SPIDER dataset (van der Graaf et al., Scientific Data 11:264, 2024; Zenodo "
                "doi 10.5281/zenodo.10159290) is licensed CC BY 4.0: https://creativecommons.org/licenses/by/4.0/. "
                "A model trained on it is shared with that attribution.")


def inference_config(config: dict) -> dict:
    """The bundle's inference.json for a run's config.json: MONAI transforms only."""
    prep = ResampleSettings.from_record(config["preprocessing"], "the run's config.json")
    if prep.mode != "spacing" or prep.intensity != "percentile":
        raise KitError("export handles runs trained on the kit's spacing-based, percentile-normalised data "
                       f"(this run: mode {prep.mode!r}, intensity {prep.intensity!r})")
    patch = [int(v) for v in config["patch_size"]]
    pixdim = [float(v) for v in prep.spacing]
    low, high = prep.percentiles
    structures = len(STRUCTURES)
    post = [{"_target_": "Activationsd", "keys": "pred", "softmax": True},
            {"_target_": "Invertd", "keys": "pred", "transform": "@preprocessing", "orig_keys": "image",
             "nearest_interp": False, "to_tensor": True},
            {"_target_": "AsDiscreted", "keys": "pred", "argmax": True}]
    post.append({"_target_": "SaveImaged", "keys": "pred", "output_dir": "@output_dir", "output_postfix": "seg",
                 "output_ext": ".nii.gz", "output_dtype": "$numpy.uint8", "resample": False,
                 "separate_folder": False, "print_log": False})
    return {
        "imports": ["$import glob", "$import numpy", "$import os"],
        "bundle_root": ".",
        "dataset_dir": "$@bundle_root + '/sample'",
        "output_dir": "$@bundle_root + '/eval'",
        "datalist": "$sorted(glob.glob(os.path.join(@dataset_dir, '*.nii*')))",
        "device": "$torch.device('cuda' if torch.cuda.is_available() else 'cpu')",
        "network_def": network_def(config["model"], tuple(patch), config["model_options"], structures),
        "network": "$@network_def.to(@device)",
        "preprocessing": {"_target_": "Compose", "transforms": [
            {"_target_": "LoadImaged", "keys": "image", "reader": "NibabelReader", "image_only": True},
            {"_target_": "EnsureChannelFirstd", "keys": "image"},
            {"_target_": "Orientationd", "keys": "image", "axcodes": CANONICAL_ORIENTATION,
             "labels": [["L", "R"], ["P", "A"], ["I", "S"]]},
            {"_target_": "Spacingd", "keys": "image", "pixdim": pixdim, "mode": "bilinear"},
            {"_target_": "ScaleIntensityRangePercentilesd", "keys": "image", "lower": low, "upper": high,
             "b_min": 0.0, "b_max": 1.0, "clip": True},
            {"_target_": "EnsureTyped", "keys": "image", "dtype": "$torch.float32"}]},
        "dataset": {"_target_": "Dataset", "data": "$[{'image': f} for f in @datalist]",
                    "transform": "@preprocessing"},
        "inferer": {"_target_": "SlidingWindowInferer", "roi_size": patch, **SLIDING_WINDOW},
        "postprocessing": {"_target_": "Compose", "transforms": post},
        "predict": "$lambda d: @postprocessing({**d, 'pred': @inferer(d['image'][None].to(@device), @network)[0]})",
        "initialize": ["$torch.set_grad_enabled(False)",
                       "$@network.load_state_dict(torch.load(@bundle_root + '/models/model.pt', "
                       "map_location=@device, weights_only=True))", "$@network.eval()"],
        "run": ["$[@predict(d) for d in @dataset]"],
    }


def metadata(config: dict, run_dir: Path, checkpoint: str, iteration: int | None) -> dict:
    """The bundle's metadata.json: versions, classes, data, the run's test metrics, input and output format."""
    import monai
    import nibabel
    import numpy

    patch = [int(v) for v in config["patch_size"]]
    channels = {str(i): name for i, name in enumerate(STRUCTURES)}
    summary = RunFiles(run_dir).evaluation("test").summary
    metrics = {}
    if summary.is_file():
        figures = json.loads(summary.read_text()).get("metrics", {})
        metrics = {f"test_{k}": v.get("mean") for k, v in figures.items() if k.startswith("dice_")}
    synthetic = config.get("data", {}).get("synthetic", False)
    return {
        "version": "0.1.0",
        "changelog": {"0.1.0": f"exported by spider-unetr-kit from {run_dir.name} ({checkpoint}, iteration "
                               f"{iteration})"},
        "monai_version": monai.__version__, "pytorch_version": torch.__version__.split("+")[0],
        "numpy_version": numpy.__version__, "required_packages_version": {"nibabel": nibabel.__version__},
        "name": "Lumbar spine MR segmentation (SPIDER, UNETR)",
        "task": "Segmentation of vertebrae, intervertebral discs and the spinal canal in sagittal lumbar spine MR",
        "description": f"{config['model']} trained with the spider-unetr-kit '{config['profile']}' profile for "
                       f"{config['max_iterations']} iterations" + (" on synthetic SPIDER-format data: a check of "
                                                                    "the pipeline, not a model for real scans"
                                                                    if synthetic else " on SPIDER"),
        "authors": "spider-unetr-kit", "copyright": "Code MIT; training data CC BY 4.0 (see LICENSE)",
        "data_source": "synthetic SPIDER-format data made by spider-unetr-kit" if synthetic else
                       "SPIDER, Zenodo record 10159290 (doi 10.5281/zenodo.10159290), CC BY 4.0",
        "data_type": "nibabel",
        "image_classes": "one channel: sagittal lumbar spine MR (T1 or T2), any intensity range",
        "label_classes": channels, "pred_classes": channels, "eval_metrics": metrics,
        "intended_use": "Research and teaching only. Not a medical device; not for diagnosis or treatment.",
        "references": ["van der Graaf et al., Lumbar spine segmentation in MR images: a dataset and a public "
                       "benchmark, Scientific Data 11:264 (2024)",
                       "Hatamizadeh et al., UNETR: Transformers for 3D Medical Image Segmentation, WACV 2022"],
        "network_data_format": {
            "inputs": {"image": {"type": "image", "format": "magnitude", "modality": "MR", "num_channels": 1,
                                 "spatial_shape": patch, "dtype": "float32", "value_range": [0, 1],
                                 "is_patch_data": True, "channel_def": {"0": "image"}}},
            "outputs": {"pred": {"type": "image", "format": "segmentation", "num_channels": len(STRUCTURES),
                                 "spatial_shape": patch, "dtype": "float32", "value_range": [0, 1],
                                 "is_patch_data": True, "channel_def": channels}}},
        "spider_unetr_kit": {"profile": config["profile"], "preprocessing": config["preprocessing"],
                             "checkpoint": checkpoint, "iteration": iteration, "structures": list(FOREGROUND)},
    }


def _torchscript(model: torch.nn.Module, patch: list[int], path: Path) -> str:
    """models/model.ts where the network traces; what happened, in a line."""
    example = torch.zeros(1, 1, *patch)
    try:
        traced = torch.jit.trace(model.cpu().eval(), example, check_trace=False)
        traced.save(str(path))
        return f"TorchScript: {path.name} (traced at input {tuple(example.shape)})"
    except Exception as e:  # tracing support varies by network and torch version: say it, keep the bundle
        return f"TorchScript: not written ({type(e).__name__}: {str(e)[:120]}); models/model.pt holds the weights"


def export_bundle(run_dir: str | Path, out: str | Path) -> Path:
    """Write the run as a MONAI bundle in `out` (a new folder, filled atomically by a rename), holding the run
    folder's lock (no training meanwhile)."""
    from helpers.core.lock import folder_lock

    with folder_lock(run_dir, "exporting a bundle"):
        return _export(Path(run_dir), Path(out))


def _export(run_dir: Path, out: Path) -> Path:
    from helpers.core.places import writable_folder
    from helpers.inference.predict import Predictor
    from helpers.training.checkpoints import save_checkpoint

    if out.exists():
        raise KitError(f"{out} exists; choose a new folder for the bundle (nothing was overwritten)")
    predictor = Predictor(run_dir, device="cpu")
    config = predictor.config
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    for sub in ("configs", "models", "docs"):
        writable_folder(tmp / sub)
    state = torch.load(run_dir / predictor.checkpoint, map_location="cpu", weights_only=True)
    save_checkpoint(tmp / "models" / "model.pt", predictor.model.state_dict())
    patch = [int(v) for v in config["patch_size"]]
    ts = _torchscript(predictor.model, patch, tmp / "models" / "model.ts")
    write_text_atomic(tmp / "configs" / "inference.json",
                      json.dumps(inference_config(config), indent=1))
    write_text_atomic(tmp / "configs" / "metadata.json",
                      json.dumps(metadata(config, run_dir, predictor.checkpoint, state.get("iteration")), indent=1))
    licence = (ROOT / "LICENSE").read_text() if (ROOT / "LICENSE").is_file() else ""
    write_text_atomic(tmp / "LICENSE", f"{licence}\n\nTraining data\n-------------\n{DATA_LICENCE}\n")
    write_text_atomic(tmp / "docs" / "README.md", _readme(config, ts))
    tmp.rename(out)
    return out


def _readme(config: dict, torchscript: str) -> str:
    return f"""# Lumbar spine MR segmentation: {config['model']} ({config['profile']} profile)

Exported by [spider-unetr-kit](https://github.com/spider-unetr-kit/spider-unetr-kit) (`python -m helpers export`).
Segments vertebrae (1), intervertebral discs (2) and the spinal canal (3) in a sagittal lumbar spine MR volume.

```bash
python -m monai.bundle run --config_file configs/inference.json --bundle_root . --dataset_dir DIR_OF_NIFTI
python -m monai.bundle verify_net_in_out network_def --meta_file configs/metadata.json \\
    --config_file configs/inference.json
```

Input: NIfTI (`.nii`, `.nii.gz`), any orientation and spacing; it is reoriented to {CANONICAL_ORIENTATION},
resampled to {config['preprocessing']['spacing']} mm (front-back, head-foot, left-right) and its intensities mapped
from their {config['preprocessing']['percentiles']} percentiles onto [0, 1]. Output: `eval/<name>_seg.nii.gz` on
the input's grid. {torchscript}.

Differences from the kit's own `helpers predict`: no anti-aliasing before resampling (MONAI's `Spacingd`), structures
only (the kit also numbers each vertebra and disc as SPIDER does), and none of the run's post-processing (the kit
removes stray components where validation showed it helps). Research and teaching only: not a medical device.

Licence: code MIT; the training data (SPIDER) CC BY 4.0, see LICENSE.
"""
