"""A training run's record, `config.json`, in one place: training writes it, and prediction, the report and the
exercises read it here, with records of earlier versions upgraded on reading (`upgraded`).

The record holds everything needed to reproduce the run and to predict with it: the resolved `TrainConfig` (profile,
network and its options, the patch size in the kit's axis order, the preprocessing record, where the data came
from) and its `history` (which iterations ran towards which max_iterations, so a run extended later never claims
what did not happen). A rerun continues a run only with the settings that define it (`require_resumable`).

Used by notebook 05 (through helpers.training.loop), notebooks 06 and 07 (through helpers.inference.predict and the
report, helpers/course/report.py) and the exercises.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers.core.atomic import write_text_atomic
from helpers.core.errors import DataError, KitError
from helpers.core.paths import RunFiles
from helpers.data.axes import ARRAY_AXES, AXES, reorder
from helpers.data.resample import ResampleSettings

CONFIG_AXES = "AP,SI,LR"  # config.json's `axes`: the order of its patch_size (the network's, the kit's one order)

# what makes a run the run it is: resuming with any of these changed would silently mix two recipes
RUN_DEFINING = ("profile", "model", "patch_size", "model_options", "datalist", "preprocessing", "lr", "batch_size",
                "samples_per_volume", "class_ratios", "loss", "warmup", "weight_decay", "augment", "seed",
                "val_every", "amp")
# what only extends a run: allowed on a rerun and recorded in config.json's `history`
RUN_EXTENDING = ("max_iterations",)


def upgraded(config: dict) -> dict:
    """A run's config.json as this version reads it. Runs recorded before the kit had one axis order (no `axes`)
    hold patch_size in (LR, SI, AP): the same patch, reordered; their preprocessing record likewise."""
    if config.get("axes") == CONFIG_AXES:
        return config
    out = dict(config, axes=CONFIG_AXES)
    if out.get("patch_size"):
        out["patch_size"] = [int(v) for v in reorder(out["patch_size"], ARRAY_AXES, AXES)]
    if out.get("preprocessing"):
        out["preprocessing"] = ResampleSettings.from_record(out["preprocessing"], "a run's config.json").record()
    return out


def read_run_record(run_dir: str | Path) -> dict:
    """A trained run's config.json, upgraded; DataError naming the file where there is none or it is not a record."""
    from helpers.core.places import read_json_object

    path = RunFiles(Path(run_dir)).config
    if not path.is_file():
        raise DataError(path, "not found; is this a training run folder (python -m helpers train)?")
    return upgraded(read_json_object(path, "a run's config", "training (notebook 05)"))


def require_resumable(run_dir: str | Path, config: dict) -> None:
    """Refuse to continue the run in `run_dir` with a `config` (a TrainConfig as a dict) that changes what it
    computes, naming the setting (for another profile: the profile, then what differs)."""
    path = RunFiles(Path(run_dir)).config
    if not path.is_file():
        return
    try:
        old = upgraded(json.loads(path.read_text()))
    except (OSError, ValueError) as e:
        raise KitError(f"{path} cannot be read ({e}); choose a new run folder, or delete this one to start "
                       "over") from None
    differs = [key for key in RUN_DEFINING if key in old and old[key] != config[key]]
    if not differs:
        return
    what = "; ".join(f"{key} {old[key]!r} there, {config[key]!r} now" for key in differs if key != "profile")
    head = (f"{run_dir} holds a run of the {old['profile']} profile, not {config['profile']}" if "profile" in differs
            else f"{run_dir} holds a run with another {differs[0]}")
    raise KitError(f"{head} ({what}); a run continues only with the settings it started with (max_iterations may "
                   "grow). Choose a new run folder, or delete this one to start over")


def write_run_record(run_dir: str | Path, config: dict, iteration: int) -> None:
    """Write config.json once the starting `iteration` is known, with its `history`; a finished run's record is left
    as it was (nothing will run)."""
    path = RunFiles(Path(run_dir)).config
    old = json.loads(path.read_text()) if path.is_file() else {}
    if old and iteration >= config["max_iterations"]:
        return
    history = old.get("history") or ([{"from_iteration": 0, "max_iterations": old["max_iterations"]}] if old else [])
    if not history or history[-1]["max_iterations"] != config["max_iterations"]:
        history.append({"from_iteration": iteration, "max_iterations": config["max_iterations"],
                        "at": time.strftime("%Y-%m-%d %H:%M:%S")})
    write_text_atomic(path, json.dumps({**config, "history": history}, indent=1))
