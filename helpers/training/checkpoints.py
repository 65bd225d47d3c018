"""Checkpoints: written atomically, loaded without running code, and a damaged one named, not a traceback.

A run folder keeps `checkpoint_last.pt` and, beside it, `checkpoint_prev.pt`: the last checkpoint it
replaced (when that one was intact). A last checkpoint damaged after it was written (a truncated
Google Drive sync) costs one validation interval: the run resumes from the previous one.

Used by notebooks 05, 06 and 07 (through helpers.training.loop and helpers.inference.predict).
"""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import torch

from helpers.core.atomic import IncompleteWrite, atomic_path
from helpers.core.errors import DataError
from helpers.core.paths import checkpoint_name

LAST, PREV = checkpoint_name("last"), checkpoint_name("prev")
TRAINING_KEYS = ("model", "optimizer", "scheduler", "scaler", "iteration", "best_metric", "best_iteration", "rng")


def save_checkpoint(path: str | Path, state: dict) -> None:
    """torch.save through a temporary file, checked to be whole (`intact`), and a rename."""
    with atomic_path(path, _whole, needed=state_bytes(state)) as tmp:
        _save(state, tmp)


def state_bytes(state) -> int:
    """The bytes of every tensor in a (nested) checkpoint state: about what its file needs on disk."""
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(state_bytes(v) for v in state.values())
    if isinstance(state, list | tuple):
        return sum(state_bytes(v) for v in state)
    return 0


def _save(state: dict, tmp: Path) -> None:
    try:
        torch.save(state, tmp)
    except RuntimeError as e:  # torch's zip writer raises RuntimeError, not OSError, when the disk fills
        raise IncompleteWrite(f"torch.save failed: {str(e).strip().splitlines()[-1]}") from None


def _whole(tmp: Path) -> None:
    if not intact(tmp):
        raise IncompleteWrite("its zip directory does not read (truncated)")


def load_checkpoint(path: str | Path, map_location="cpu") -> dict:
    """Load a checkpoint without running code from the file (weights_only=True)."""
    return torch.load(path, map_location=map_location, weights_only=True)


def intact(path: str | Path) -> bool:
    """Cheap check that a checkpoint is not truncated: its zip directory, at the end of the file, reads."""
    try:
        with zipfile.ZipFile(path) as archive:
            return bool(archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def read_checkpoint(path: str | Path, keys: tuple[str, ...] = ("model",), todo: str = "") -> dict:
    """`load_checkpoint`, or DataError naming the file when it is damaged or not one of the kit's."""
    path = Path(path)
    try:
        state = load_checkpoint(path)
    except pickle.UnpicklingError as e:
        if "GLOBAL" not in str(e):  # not a pickle of tensors at all: damaged or another kind of file
            raise DataError(path, "is damaged: truncated or not a PyTorch checkpoint"
                                  + (f". {todo}" if todo else "")) from None
        raise DataError(path, "holds objects other than tensors and numbers, so it was not loaded "
                              "(weights_only); it is not a checkpoint of this kit"
                              + (f". {todo}" if todo else "")) from None
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as e:
        detail = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:120]
        raise DataError(path, f"is damaged: truncated or not a PyTorch checkpoint ({detail})"
                              + (f". {todo}" if todo else "")) from None
    missing = [k for k in keys if k not in state] if isinstance(state, dict) else list(keys)
    if missing:
        raise DataError(path, f"is not a checkpoint of this kit (it lacks {', '.join(missing)})"
                              + (f". {todo}" if todo else ""))
    return state


def load_weights(model: torch.nn.Module, weights: dict, path: str | Path, network: str) -> None:
    """Load a state dict; DataError naming the file when it was saved by another model or class count."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines()[1:] if line.strip()]
        detail = (lines[0] if lines else str(e))[:200].rstrip(".")
        raise DataError(path, f"does not fit {network}: it was saved by another model or for another number of "
                              f"classes ({detail}). Use a checkpoint written by this run, or the run folder "
                              "the checkpoint came from") from None


def save_last(run_dir: str | Path, state: dict) -> Path:
    """Write `checkpoint_last.pt` atomically; the intact one it replaces becomes `checkpoint_prev.pt`."""
    last, prev = Path(run_dir) / LAST, Path(run_dir) / PREV
    with atomic_path(last, _whole, needed=state_bytes(state)) as tmp:
        _save(state, tmp)
        _whole(tmp)  # before the last one becomes prev
        if last.is_file() and intact(last):
            os.replace(last, prev)
    return last


def resume_state(run_dir: str | Path, log=print) -> tuple[dict, Path] | None:
    """The newest readable training checkpoint of a run (last, else prev) and its path; None for a new run.

    A damaged last checkpoint is named through `log`; DataError says what to do when none is readable."""
    last, prev = Path(run_dir) / LAST, Path(run_dir) / PREV
    damaged: list[DataError] = []
    for path in (last, prev):
        if not path.is_file():
            continue
        try:
            state = read_checkpoint(path, TRAINING_KEYS)
        except DataError as e:
            damaged.append(e)
            continue
        if path == prev:
            why = str(damaged[0]) if damaged else f"{last} is missing"
            log(f"{why}; resuming from the previous checkpoint {path.name} (iteration {state['iteration']}), "
                "one validation interval earlier")
        return state, path
    if damaged:
        first = damaged[0]
        raise DataError(first.path, f"{first.reason}; there is no readable {PREV} beside it to resume from. "
                                    f"Move {first.path.name} out of {first.path.parent} to start this run over, "
                                    "or copy a good copy of it back, then rerun the same command")
    return None


def kept_checkpoints(run_dir: str | Path) -> str:
    """Which checkpoints a stopped run can resume from, for messages (none is named that does not exist)."""
    existing = [str(Path(run_dir) / name) for name in (LAST, PREV) if (Path(run_dir) / name).is_file()]
    if not existing:
        return "no checkpoint has been written yet (the first comes with the first validation)"
    return "the last good checkpoint is kept in " + " (previous one: ".join(existing) + (")" * (len(existing) - 1))
