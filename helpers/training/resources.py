"""Will it fit? The resource check `train` prints before its first step: the network's size, the host memory that
caching the volumes needs against what is free (the cached share is cut to fit, with the reason), the disk the
checkpoints need against what is free, the device's memory for the weights and the optimiser; and, from the first
real steps, the time per iteration, the run's expected length and the peak memory (`StepClock`). (Not a "plan" in
nnU-Net's sense: the recipe is the profile's, helpers/core/profiles.py; this only checks the machine can run it.)

Used by notebook 05 (and `python -m helpers train`): what cannot fit is refused before training starts, with what
to do, instead of the operating system killing the process half-way ("exitcode -9") or CUDA running out of memory.
"""

from __future__ import annotations

import math
import os
import resource
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from helpers.core.errors import KitError
from helpers.core.paths import RunFiles

CACHE_SHARE = 0.5  # of the free host memory, at most, for cached volumes: the rest for the model, workers, the OS
BYTES_PER_PARAMETER_CHECKPOINTS = 4 * (1 + 3 + 3)  # best (weights), last and prev (weights and two AdamW moments)
BYTES_PER_PARAMETER_TRAINING = 4 * 4  # weights, gradients, two AdamW moments (float32), before activations


def free_ram() -> int:
    """Bytes of host memory available now (MemAvailable on Linux; half the physical memory elsewhere)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2


def peak_memory(device: torch.device) -> str:
    """The peak memory so far: allocated on a CUDA device, resident for this process otherwise."""
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated(device) / 1e9:.1f} GB GPU (peak allocated)"
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.1f} GB RAM (peak resident)"


def duration(seconds: float) -> str:
    """'40 s', '12 min' or '3.5 h'."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def _gb(n: float) -> str:
    return f"{n / 1e9:.1f} GB"


def voxels(path: str | Path) -> int:
    """Voxels of a NIfTI volume, from its header alone."""
    import nibabel as nib

    return math.prod(nib.load(str(path)).header.get_data_shape())


def cached_bytes_per_voxel(item: dict, chain) -> float:
    """What one volume costs in the cache, measured: the deterministic part of the chain run on it (image, label
    and, with balanced sampling, the voxel indices of each class), bytes per voxel of its image."""
    from monai.transforms import Randomizable

    out = dict(item)
    for step in chain.transforms:
        if isinstance(step, Randomizable):
            break
        out = step(out)
    size = 0
    for value in out.values():
        values = value if isinstance(value, list | tuple) else [value]
        size += sum(v.nbytes for v in values if hasattr(v, "nbytes"))
    return size / voxels(item["image"])


@dataclass
class ResourceCheck:
    """What a run needs and what the machine has; `problems` stop it before the first step."""

    device: str
    parameters: int
    cache_needed: int  # bytes to cache every training and validation volume in host memory
    ram_free: int
    cache_rate: float  # share of the training volumes cached (the rest read from disk at each use)
    disk_needed: int
    disk_free: int
    lines: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def check_resources(model: torch.nn.Module, device: torch.device, items: list[dict], chain, run_dir: Path,
                    iterations: int, patch: tuple[int, ...], patches_per_step: int, amp: bool = True) -> ResourceCheck:
    """What training `model` on `items` (training and validation) into `run_dir` needs, against what this machine
    has free: the lines to print and the problems that stop the run."""
    from helpers.training.models import parameter_count, precision_note

    params = parameter_count(model)
    per_voxel = cached_bytes_per_voxel(items[0], chain) if items else 0.0
    need = int(per_voxel * sum(voxels(i["image"]) for i in items))
    ram = free_ram()
    weights = params * BYTES_PER_PARAMETER_TRAINING
    budget = CACHE_SHARE * max(0, ram - (weights if device.type == "cpu" else 0))  # on a CPU the model shares RAM
    rate = 1.0 if need <= budget else max(0.0, budget / need)
    run_dir.mkdir(parents=True, exist_ok=True)
    kept = sum(p.stat().st_size for p in RunFiles(run_dir).checkpoints)  # a resumed run rewrites what it has
    disk_need = max(0, params * BYTES_PER_PARAMETER_CHECKPOINTS - kept)
    disk_free = shutil.disk_usage(run_dir).free
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    check = ResourceCheck(name, params, need, ram, rate, disk_need, disk_free)
    check.lines = [
        f"resources: {name} ({precision_note(device, amp)}); {params / 1e6:.1f} M parameters; patch {tuple(patch)} "
        f"(AP x SI x LR) x {patches_per_step} per step; {iterations} iterations",
        f"  host memory: caching {len(items)} volumes needs {_gb(need)} ({per_voxel:.1f} bytes a voxel, measured on "
        f"the first), {_gb(ram)} free: " + ("all cached" if rate >= 1 else
                                             f"{rate:.0%} of them cached (at most half the memory the network "
                                             "leaves free), the rest read from disk at each use"),
        f"  disk: checkpoints need about {_gb(disk_need)} more, {_gb(disk_free)} free in {run_dir}"]
    if disk_free < disk_need:
        check.problems.append(f"{run_dir}: {_gb(disk_free)} free, the checkpoints need about {_gb(disk_need)}; free "
                             "some space or choose another run folder")
    if device.type == "cuda":
        total = torch.cuda.get_device_properties(device).total_memory
        check.lines.append(f"  GPU memory: weights, gradients and AdamW states {_gb(weights)} of {_gb(total)}; the "
                          "activations of a step are measured in the first steps")
        if weights > 0.9 * total:
            check.problems.append(f"{name}: {_gb(total)} of memory, the network's weights and optimiser alone need "
                                 f"{_gb(weights)}; choose a smaller profile or model")
    elif weights > ram:
        check.problems.append(f"the network's weights and optimiser need {_gb(weights)}, {_gb(ram)} of memory is "
                             "free; choose a smaller profile or model")
    return check


def require_fit(check: ResourceCheck) -> None:
    """Stop before the first step when the check found what cannot fit, saying what."""
    if check.problems:
        raise KitError("this run cannot fit: " + "; ".join(check.problems))


class StepClock:
    """Times the first real steps and says what they mean for the whole run, once."""

    def __init__(self, device: torch.device, start: int, last: int, measure: int = 5):
        self.device, self.start, self.last, self.measure = device, start, last, measure
        self.t0: float | None = None
        self.per_iteration: float | None = None  # seconds, measured over the first steps after the first
        self.said = False
        self.validated = False  # whether the first validation's time and memory were said
        self.waited = self.stepped = 0.0  # seconds waiting for batches and in steps, the warm-up step left out
        self._first = True

    def waiting(self, batches):
        """`batches`, with the time spent waiting for each (the data chain's share of training) counted."""
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(batches)
            except StopIteration:
                return
            if not self._first:
                self.waited += time.perf_counter() - t0
            yield batch

    def timed(self, step, *args):
        """`step(*args)`, its seconds counted (after the warm-up step)."""
        t0 = time.perf_counter()
        result = step(*args)
        if self._first:
            self._first = False
        else:
            self.stepped += time.perf_counter() - t0
        return result

    @property
    def wait_share(self) -> float | None:
        """Share of the training time spent waiting for data (validation left out); None before two steps."""
        total = self.waited + self.stepped
        return self.waited / total if total > 0 else None

    def step(self, iteration: int) -> str | None:
        """Call after each step; returns the line to print once the first steps are measured."""
        if iteration == self.start + 1:  # the first step warms up (allocations, kernels): not counted
            self.t0 = time.perf_counter()
            return None
        done = iteration - self.start - 1
        if self.said or self.t0 is None or (done < self.measure and iteration < self.last):
            return None
        self.said = True
        per = self.per_iteration = (time.perf_counter() - self.t0) / max(1, done)
        left = (self.last - iteration) * per
        return (f"measured: {per:.2f} s an iteration over {done} steps: the {self.last - iteration} left take about "
                f"{duration(left)} (plus validation); peak memory so far {peak_memory(self.device)}")

    def validation_line(self, iteration: int, every: int, series: int, seconds: float) -> str:
        """After the first validation: its time and memory, and the whole run's expected length with them."""
        line = f"validation of {series} series: {seconds:.0f} s; peak memory so far {peak_memory(self.device)}"
        if self.per_iteration is None:
            return line
        validations = len({i for i in range(iteration + 1, self.last + 1) if i % every == 0 or i == self.last})
        left = (self.last - iteration) * self.per_iteration + validations * seconds
        more = f"{validations} more validation{'s' if validations != 1 else ''}"
        return f"{line}; the rest of the run ({more}) takes about {duration(left)}"
