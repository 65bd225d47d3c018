"""helpers: the logic of the SPIDER + UNETR course kit, shared by notebooks, command line and tests.

The folders are the pipeline's stages, each using only the ones above it:

- `core/`        where files go (`paths`: every file of a run), profiles, errors, verified writes, locks, runtime
- `data/`        SPIDER's layout and labels, axes, synthetic data, download, inspection, resampling, datalist,
                 your own DICOM scan, and the predecessor project's recipe the kit compares itself with
- `training/`    transforms, networks and the sliding window, the training loop, the run's record (`run_record`),
                 checkpoints and random state, the resource check, post-processing
- `inference/`   a trained run on any scan: the predictor, instance numbering, DICOM SEG, the MONAI bundle
- `evaluation/`  Dice, the challenge's scoring, mean ± sd, level by level, and the surface-distance engine
                 (`distances/`)
- `figures/`     every picture: series, data, training charts, the gallery of cases, the 3D viewer
- `course/`      the course itself: notebook setup, the course's choice, the runner, exercises, the report
- `cli.py`       `python -m helpers <command>`: the same functions from a terminal

The names the notebooks use can be imported from here (`from helpers import train, TrainConfig`); each is
loaded from its stage only when first asked for, so importing the kit stays cheap. Every module's docstring
says what it is for and which notebooks use it.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# name -> the module that defines it, grouped by stage (the notebooks import these names from `helpers`)
EXPORTS: dict[str, str] = {
    # core
    "run_layout": "core.paths", "get_profile": "core.profiles", "write_text_atomic": "core.atomic",
    "headless": "core.runtime",
    # data
    "orientation": "data.axes",
    "scan_dataset": "data.spider", "read_series": "data.spider", "file_orientation": "data.spider",
    "FOREGROUND": "data.labels", "STRUCTURES": "data.labels", "label_name": "data.labels",
    "structure_of": "data.labels", "name_levels": "data.labels", "to_structures": "data.labels",
    "ensure_synthetic": "data.synth",
    "ZENODO_FILES_URL": "data.download", "download": "data.download", "read_manifest_file": "data.download",
    "zip_store": "data.download",
    "dataset_summary": "data.inspection", "inspect_dataset": "data.inspection", "flagged": "data.inspection",
    "ResampleSettings": "data.resample", "choose_spacing": "data.resample", "header_spacing": "data.resample",
    "resample_dataset": "data.resample", "read_manifest": "data.resample", "preprocess": "data.resample",
    "LeakageError": "data.datalist", "check_no_leakage": "data.datalist", "series_split_leaks": "data.datalist",
    "split_table": "data.datalist", "write_datalist": "data.datalist",
    "demo_scan": "data.dicom_series", "read_scan": "data.dicom_series", "write_dicom_series": "data.dicom_series",
    # training
    "transforms": "training.transforms", "parameter_count": "training.models", "build_model": "training.models",
    "TrainConfig": "training.loop", "train": "training.loop", "build_loss": "training.loop",
    "preview_patches": "training.loop", "require_profile_grid": "training.loop",
    "read_metrics": "training.run_log", "cleanup": "training.postprocess",
    # inference
    "predict_file": "inference.predict", "read_dicom_seg": "inference.dicom_seg", "export_bundle": "inference.bundle",
    "predict_folder": "inference.batch",
    # evaluation
    "evaluate": "evaluation.evaluate",
    "structure_table": "evaluation.challenge",
    "level_table": "evaluation.levels", "worst_instances": "evaluation.levels", "describe": "evaluation.levels",
    # figures
    "SeriesView": "figures.series", "show_views": "figures.series", "legend_handles": "figures.series",
    "slice_slider": "figures.series",
    "plot_spacing_intensity": "figures.dataset", "plot_grids": "figures.dataset", "plot_intensities": "figures.dataset",
    "LivePlot": "figures.charts", "plot_curves": "figures.charts", "plot_patches": "figures.charts",
    "unetr_diagram": "figures.charts", "plot_metric_boxes": "figures.charts",
    "pick_cases": "figures.gallery", "show_cases": "figures.gallery", "show_instances": "figures.gallery",
    "show_3d": "figures.viewer3d",
    "scan_picture": "figures.contact_sheet", "contact_sheet": "figures.contact_sheet",
    "show_contact_sheet": "figures.contact_sheet",
    # course
    "setup": "course.notebook_setup", "gpu_check": "course.notebook_setup",
    "default_data_dir": "course.choice", "record_course": "course.choice", "follow_course": "course.choice",
    "Checker": "course.exercises",
    "build_report": "course.report", "comparison_table": "course.report",
    "same_time_run": "course.networks", "plot_compared": "course.networks", "compared_table": "course.networks",
    "compared_runs": "course.networks",
    "comparison_dir": "course.networks",
}
__all__ = sorted(EXPORTS)


def __getattr__(name: str) -> Any:
    module = EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'helpers' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"helpers.{module}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(EXPORTS))
