"""Random state of a training run: captured in each checkpoint and restored on resume, so a resumed run draws
the same numbers as one that was never stopped; and the seed of the data stream per process and epoch.

Used by notebook 05 (through helpers.training.loop).
"""

from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    """torch, Python, numpy (and CUDA) random states, as tensors, lists and numbers (weights_only-loadable)."""
    np_state = np.random.get_state()
    py_version, py_state, _ = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": list(py_state), "python_version": py_version,
             "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    """Restore what `rng_state` captured."""
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), None))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def data_seed(seed: int, rank: int, epoch: int) -> int:
    """Seed of the random transforms for one process and epoch: the data stream depends on where the run is,
    not on its history, so a resumed run draws the patches an unbroken one would."""
    return (seed + 1000 * rank + epoch) % (2**32)
