"""A run's log: `metrics.jsonl` (one JSON line per logged training step and per validation) and, when
TensorBoard is installed, the same numbers under `tensorboard/`. Only rank 0 writes.

Used by notebook 05 (training writes it, the curves read it) and notebook 06 (the report reads it).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from helpers.core.atomic import NO_SPACE, no_space_error, write_text_atomic
from helpers.core.paths import METRICS_LOG as METRICS


class RunLog:
    """Averages the training loss between log lines and appends entries; a no-op where `write` is False."""

    def __init__(self, run_dir: Path, write: bool = True):
        self.path = Path(run_dir) / METRICS
        self.writer = _tensorboard(run_dir) if write else None
        self.write = write
        self.losses: list[float] = []
        self.tic = time.perf_counter()

    def loss(self, value: float) -> None:
        """One step's loss, kept for the next training entry."""
        self.losses.append(value)

    def train(self, iteration: int, lr: float) -> None:
        """Mean loss, learning rate and speed since the last training entry."""
        seconds = time.perf_counter() - self.tic
        entry = {"kind": "train", "iteration": iteration, "loss": float(np.mean(self.losses)), "lr": lr,
                 "iterations_per_s": len(self.losses) / max(seconds, 1e-9)}
        self._append(entry)
        if self.writer:
            self.writer.add_scalar("train/loss", entry["loss"], iteration)
        self.losses, self.tic = [], time.perf_counter()

    def validation(self, entry: dict) -> None:
        """A validation entry; its Dice scores also go to TensorBoard."""
        self._append(entry)
        if self.writer:
            for k, v in entry.items():
                if k.startswith("dice_"):
                    self.writer.add_scalar(f"val/{k}", v, entry["iteration"])

    def close(self) -> None:
        if self.writer:
            self.writer.close()

    def _append(self, entry: dict) -> None:
        if self.write:
            line = json.dumps(entry) + "\n"
            try:
                with open(self.path, "a") as f:
                    f.write(line)
            except OSError as e:  # a half-written last line is ignored by read_metrics
                if e.errno in NO_SPACE:
                    raise no_space_error(self.path.parent, len(line), self.path.name) from None
                raise


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(Path(run_dir) / "tensorboard"))


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every logged entry of a run (a half-written last line from a crash is ignored)."""
    path = Path(run_dir) / METRICS
    entries = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries


def trim_metrics(run_dir: str | Path, iteration: int) -> None:
    """Keep the entries up to `iteration` (a resumed run drops what its checkpoint lacks)."""
    kept = [e for e in read_metrics(run_dir) if e["iteration"] <= iteration]
    write_text_atomic(Path(run_dir) / METRICS, "".join(json.dumps(e) + "\n" for e in kept))
