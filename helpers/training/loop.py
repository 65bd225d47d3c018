"""One training loop for the notebook, the command line and torchrun (DistributedDataParallel).

A run folder holds `config.json` (everything needed to reproduce and to predict; run_record.py), `checkpoint_last.pt`,
`checkpoint_prev.pt` (the one before it) and `checkpoint_best.pt` (helpers/training/checkpoints.py: written
atomically, loaded with weights_only=True), and `metrics.jsonl` (one line per logged step and per
validation, run_log.py). Rerunning the same command resumes from the last readable checkpoint at
its iteration, with optimizer, scheduler, scaler and RNG states (random_state.py). Every batch is checked
before the step (batch_guard.py), so bad data stops training with the series named instead of as a
divergence. `train` reads as its steps: prepare the run folder, build, resume, make the loaders, then the
loop of steps with validation and checkpoints; processes and ranks are helpers/training/distributed.py's, the
data chain helpers/training/transforms.py's.

Used by notebook 05 (and `python -m helpers train`).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from helpers.core.atomic import remove_stale_temps
from helpers.core.errors import KitError
from helpers.core.lock import folder_lock
from helpers.core.paths import RunFiles
from helpers.core.profiles import LOSSES, get_profile
from helpers.data.datalist import load_datalist
from helpers.data.labels import FOREGROUND, STRUCTURES
from helpers.data.resample import ResampleSettings
from helpers.training.batch_guard import check_batch, plain
from helpers.training.checkpoints import kept_checkpoints, load_weights, resume_state, save_checkpoint, save_last
from helpers.training.distributed import Processes
from helpers.training.models import (
    amp_dtype,
    autocast,
    build_model,
    channels_last_norms,
    optimizer_for,
    parameter_count,
    require_patch_fits,
    sliding_window_logits,
)
from helpers.training.postprocess import cleanup
from helpers.training.random_state import data_seed, rng_state, set_rng_state
from helpers.training.resources import StepClock, check_resources, require_fit
from helpers.training.run_log import RunLog, read_metrics, trim_metrics
from helpers.training.run_record import CONFIG_AXES, require_resumable, write_run_record
from helpers.training.transforms import cached_dataset, class_structures, instance_labels, transforms


class TrainingDiverged(KitError):
    """The loss became NaN or infinite."""


@dataclass
class TrainConfig:
    datalist: str
    run_dir: str
    profile: str = "smoke"
    model: str = "unetr"
    max_iterations: int | None = None  # None: the profile's
    val_every: int | None = None
    patch_size: list[int] | None = None  # (AP, SI, LR), the network's order; None: the profile's
    batch_size: int | None = None
    samples_per_volume: int | None = None  # None: the profile's
    lr: float | None = None  # None: the profile's
    class_ratios: list[float] | None = None  # patch centres per class; None: the profile's; []: predecessor's pos/neg
    loss: str | None = None  # one of LOSSES; None: the profile's
    warmup: float | None = None  # share of the iterations warming up the learning rate; None: the profile's
    weight_decay: float = 1e-5
    seed: int = 0
    num_workers: int | None = None
    log_every: int = 5
    amp: bool = True  # reduced precision where the device computes it natively (helpers.training.models.amp_dtype)
    augment: bool = True  # False: patches only (the predecessor trained without augmentation)
    model_options: dict = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # where the data came from, and whether it is synthetic
    axes: str = CONFIG_AXES  # the order of patch_size; runs recorded without it: run_record.upgraded

    def resolved(self) -> TrainConfig:
        """Fill what was left to the profile."""
        p = get_profile(self.profile)
        return TrainConfig(**{**asdict(self),
                              "max_iterations": self.max_iterations or p.max_iterations,
                              "val_every": self.val_every or p.val_every,
                              "lr": self.lr or p.lr,
                              "samples_per_volume": self.samples_per_volume or p.samples_per_volume,
                              "class_ratios": list(p.class_ratios if self.class_ratios is None else self.class_ratios),
                              "loss": self.loss or p.loss,
                              "warmup": p.warmup if self.warmup is None else self.warmup,
                              "patch_size": list(self.patch_size or p.patch_size),
                              "batch_size": self.batch_size or p.batch_size,
                              "num_workers": p.num_workers if self.num_workers is None else self.num_workers,
                              "model_options": self.model_options or (p.model if self.model == "unetr" else {})})


def build_loss(name: str):
    """The training loss by name: Dice + cross-entropy (default), Dice + focal, or Dice alone."""
    from monai.losses import DiceCELoss, DiceFocalLoss, DiceLoss

    if name == "dicece":
        return DiceCELoss(to_onehot_y=True, softmax=True)
    if name == "dicefocal":
        return DiceFocalLoss(to_onehot_y=True, softmax=True)
    if name == "dice":
        return DiceLoss(to_onehot_y=True, softmax=True)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")


def validate(model: torch.nn.Module, loader, patch: tuple[int, ...], device: torch.device, amp: bool,
             classes: np.ndarray | None = None) -> dict[str, float]:
    """Sliding-window Dice per structure (background excluded) and their mean, and each structure's Dice after
    `postprocess.cleanup` (`clean_dice_<name>`: what the run's post-processing is chosen from); `classes` maps
    outputs to structures, so instance-class models are scored the same way."""
    from monai.metrics import compute_dice  # functional: no all-gather, so rank 0 can validate alone
    from monai.networks.utils import one_hot

    scores = {"": [], "clean_": []}
    lut = torch.as_tensor(classes if classes is not None else np.arange(len(STRUCTURES)), device=device)
    model.eval()
    with torch.no_grad(), autocast(device, amp):
        for batch in loader:
            check_batch(batch, len(lut), "a validation batch")
            image, label = plain(batch["image"]).to(device), plain(batch["label"]).to(device)
            pred = lut[sliding_window_logits(model, image, patch).argmax(1, keepdim=True)]
            cleaned = torch.as_tensor(np.stack([cleanup(p) for p in pred.cpu().numpy()]), device=device)
            truth = one_hot(lut[label.long()], len(STRUCTURES))
            for prefix, structures in (("", pred), ("clean_", cleaned)):
                scores[prefix].append(compute_dice(one_hot(structures, len(STRUCTURES)), truth,
                                                   include_background=False, ignore_empty=True).cpu().numpy())
    model.train()
    result = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for prefix, values in scores.items():
            per = np.nanmean(np.concatenate(values), axis=0)  # a structure absent from a case does not count
            result.update({f"{prefix}dice_{name}": float(v) for name, v in zip(FOREGROUND, per)})
            result[f"{prefix}dice_mean"] = float(np.nanmean(per))
    return result


def preview_patches(config: TrainConfig, volumes: int = 2) -> list[dict]:
    """The augmented patches that training draws from `volumes` training volumes, as the network gets them."""
    config, data = _with_data(config)
    chain = _training_chain(config)
    chain.set_random_state(seed=config.seed)
    items = data["training"]
    step = max(1, len(items) // volumes)
    return [patch for item in items[::step][:volumes] for patch in chain(item)]


def _with_data(config: TrainConfig) -> tuple[TrainConfig, dict]:
    """The config resolved from its profile, with the datalist's preprocessing and data source; the datalist."""
    config = config.resolved()
    data = load_datalist(config.datalist)
    prep = data["preprocessing"]
    config.preprocessing = ResampleSettings.from_record(prep, config.datalist).record() if prep else {}
    config.data = data["data"]
    return config, data


def require_profile_grid(config: TrainConfig) -> None:
    """Refuse data that notebook 03 prepared on another profile's grid, saying what to rerun: a patch sized for one
    grid sees other millimetres on another (the smoke profile's 64 voxels span 128 mm at 2 mm, 64 mm at 1 mm)."""
    from helpers.core.profiles import PROFILES

    config, _ = _with_data(config)
    prep, profile = config.preprocessing, get_profile(config.profile)
    floor = prep.get("min_inplane_mm")
    if prep.get("mode") != "spacing" or floor is None or abs(float(floor) - profile.inplane_mm) < 1e-9:
        return
    made_for = [p.name for p in PROFILES.values() if abs(p.inplane_mm - float(floor)) < 1e-9]
    raise KitError(f"{config.datalist}: its data was prepared on a {float(floor):g} mm in-plane grid (the "
                   f"{' / '.join(made_for) or 'unknown'} profile's), but this run trains the {profile.name} profile "
                   f"({profile.inplane_mm:g} mm). Rerun notebooks 03 and 04 with profile = {profile.name!r} (or "
                   f"`python -m helpers resample --profile {profile.name}` and `datalist`), or train with the "
                   f"profile the data was made for.")


def check_resources_for(config: TrainConfig, device: str | None = None):
    """The resource check `train` prints before its first step (resources.py), for notebook 05 and the benchmarks."""
    config, data = _with_data(config)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    patch = tuple(int(v) for v in config.patch_size)
    model = build_model(config.model, patch, config.model_options, out_channels=len(class_structures(asdict(config))))
    return check_resources(model, dev, data["training"] + data["validation"], _training_chain(config),
                           Path(config.run_dir), config.max_iterations, patch,
                           config.batch_size * config.samples_per_volume, config.amp)


def _training_chain(config: TrainConfig):
    """The training transforms of a config from `_with_data`: one definition for `train` and the preview."""
    return transforms(tuple(int(v) for v in config.patch_size), config.samples_per_volume, True,
                      instance_labels(config.preprocessing), config.augment, config.class_ratios)


# ---------------------------------------------------------------- training, step by step
@dataclass
class _Run:
    """What the loop works on: the built network and its optimisation, and where training stands."""

    config: TrainConfig
    device: torch.device
    amp: bool  # reduced precision where the device computes it natively (helpers.training.models.amp_dtype)
    patch: tuple[int, ...]  # (AP, SI, LR), the kit's order
    classes: np.ndarray  # structure of each output class
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: torch.nn.Module
    iteration: int = 0
    best: float = -1.0
    best_iteration: int = 0

    @property
    def dir(self) -> Path:
        return Path(self.config.run_dir)

    def checkpoint(self) -> dict:
        """Everything a rerun needs to continue as if never stopped (checkpoint_last.pt)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "scaler": self.scaler.state_dict(),
                "iteration": self.iteration, "best_metric": self.best, "best_iteration": self.best_iteration,
                "rng": rng_state()}

    def summary(self) -> dict:
        return {"iteration": self.iteration, "best_metric": self.best, "best_iteration": self.best_iteration}


def train(config: TrainConfig, callback: Callable[[list[dict]], None] | None = None, progress: bool = True) -> dict:
    """Train until `max_iterations`; resume from `run_dir/checkpoint_last.pt` when it exists.

    The steps, in order: `_prepare` (config.json), `_build` (network, optimiser), `_resume`, `_loaders`, and
    `_loop`: `_step` per batch, `_validate_and_save` every `val_every`. `callback` gets every metrics entry
    after each validation (notebook 05's live plot)."""
    procs = Processes.start()
    if not procs.main:  # the lock is the main process's; the others follow it
        return _train(config, procs, callback, progress)
    with folder_lock(config.run_dir, "training", procs.log):
        removed = remove_stale_temps(config.run_dir)
        if removed:
            procs.log(f"removed {len(removed)} temporary file(s) left by an interrupted run in {config.run_dir}")
        return _train(config, procs, callback, progress)


def _train(config: TrainConfig, procs: Processes, callback, progress: bool) -> dict:
    config, data = _prepare(config, procs)
    run = _build(config, procs)
    _resume(run, procs)
    if procs.main:  # config.json, once the starting iteration is known (run_record.py)
        write_run_record(run.dir, asdict(run.config), run.iteration)
    if run.iteration >= config.max_iterations:
        best = f"best mean Dice {run.best:.4f}" if run.best >= 0 else "no validation: the last checkpoint is the model"
        procs.log(f"{run.dir} already finished ({run.iteration} iterations); {best}")
        return run.summary()
    cache_rate = _check_resources(run, data, procs)
    net = procs.wrap(run.model)
    loader, val_loader = _loaders(run, data, procs, cache_rate)
    start = time.perf_counter()
    clock = _loop(run, net, loader, val_loader, procs, callback, progress)
    procs.finish()
    summary = {**run.summary(), "parameters": parameter_count(run.model), "loop_seconds": time.perf_counter() - start,
               "measured_iteration_seconds": clock.per_iteration, "cache_rate": cache_rate,
               "data_wait_share": clock.wait_share}
    procs.log(f"finished {run.iteration} iterations; " + (
        f"best mean Dice {run.best:.4f} at iteration {run.best_iteration}" if val_loader is not None else
        "no validation part, so no best model: the last checkpoint is the model") + f" -> {run.dir}"
        + _wait_note(clock.wait_share, run.device))
    return summary


def _wait_note(share: float | None, device: torch.device) -> str:
    """Where the data chain held a GPU's steps up noticeably, say so and what to do (on a CPU the chain shares the
    same cores, so more workers would not help)."""
    if device.type != "cuda" or share is None or share < 0.1:
        return ""
    return (f"; {share:.0%} of the training time went waiting for data: more loader workers (num_workers) or "
            "caching every volume would shorten it")


def _prepare(config: TrainConfig, procs: Processes) -> tuple[TrainConfig, dict]:
    """The full config, checked against what the run folder already holds (run_record.require_resumable)."""
    config, data = _with_data(config)
    require_patch_fits(config.model, config.patch_size)
    require_resumable(config.run_dir, asdict(config))
    return config, data


def _build(config: TrainConfig, procs: Processes) -> _Run:
    """The seeded network, AdamW, warmup then cosine decay, the AMP scaler and the loss, on this process's device."""
    from monai.optimizers import WarmupCosineSchedule
    from monai.utils import set_determinism

    device = procs.device()
    amp = config.amp  # float16 on CUDA, bfloat16 on a CPU with native support (models.amp_dtype)
    patch = tuple(int(v) for v in config.patch_size)
    set_determinism(config.seed + procs.rank)
    classes = class_structures(asdict(config))
    model = build_model(config.model, patch, config.model_options, out_channels=len(classes))
    layout = memory_format(config, device)
    if layout == torch.channels_last_3d and amp_dtype(device, amp) is None:  # float32 only: slower in bfloat16
        channels_last_norms(model)
    model = model.to(device, memory_format=layout)
    optimizer = optimizer_for(model, config.lr, config.weight_decay)
    scheduler = WarmupCosineSchedule(optimizer, warmup_steps=max(1, round(config.warmup * config.max_iterations)),
                                     t_total=config.max_iterations)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device, amp) == torch.float16)
    return _Run(config, device, amp, patch, classes, model, optimizer, scheduler, scaler, build_loss(config.loss))


def memory_format(config: TrainConfig, device: torch.device) -> torch.memory_format:
    """How the network's weights and input lie in memory: channels-last where the profile says it pays (a CPU)."""
    if device.type == "cpu" and get_profile(config.profile).cpu_channels_last:
        return torch.channels_last_3d
    return torch.preserve_format


def _resume(run: _Run, procs: Processes) -> None:
    """Continue from the newest readable checkpoint, if any: weights, optimisation and RNG states, progress."""
    resumed = resume_state(run.dir, log=procs.log)
    if not resumed:
        return
    state, path = resumed
    load_weights(run.model, state["model"], path, f"this run's {run.config.model} ({len(run.classes)} classes)")
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.scaler.load_state_dict(state["scaler"])
    run.iteration, run.best, run.best_iteration = state["iteration"], state["best_metric"], state["best_iteration"]
    set_rng_state(state["rng"])
    procs.log(f"resuming {run.dir} from iteration {run.iteration}")
    if procs.main:
        trim_metrics(run.dir, run.iteration)  # drop what the checkpoint lacks


def _check_resources(run: _Run, data: dict, procs: Processes) -> float:
    """Print the resource check (resources.py) and refuse what cannot fit; the share of the volumes to cache in RAM."""
    config = run.config
    items = data["training"] + (data["validation"] if procs.main else [])
    check = check_resources(run.model, run.device, items, _training_chain(config), run.dir, config.max_iterations,
                            run.patch, config.batch_size * config.samples_per_volume, config.amp)
    for line in check.lines:
        procs.log(line)
    if not data["validation"]:
        procs.log("  no validation part in the datalist: no model is chosen on validation, checkpoint_best.pt "
                  "is not written, and the last checkpoint is the model")
    require_fit(check)
    return check.cache_rate


def _loaders(run: _Run, data: dict, procs: Processes, cache_rate: float = 1.0):
    """The training loader (each process its share) and, on rank 0, the validation loader (None without data)."""
    from monai.data import DataLoader, DistributedSampler

    config = run.config
    train_ds = cached_dataset(data["training"], _training_chain(config), config.num_workers, cache_rate)
    sampler = DistributedSampler(train_ds, shuffle=True) if procs.distributed else None
    loader = DataLoader(train_ds, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=config.num_workers, drop_last=False)
    if not (procs.main and data["validation"]):
        return loader, None
    chain = transforms(run.patch, 1, False, instance_labels(config.preprocessing))
    val_ds = cached_dataset(data["validation"], chain, config.num_workers, cache_rate)
    return loader, DataLoader(val_ds, batch_size=1, num_workers=config.num_workers)


def _batches(loader, seed: int, rank: int, epoch: int):
    """Batches without end, epoch after epoch, from `epoch` on; each epoch's random draws seeded by where the
    run is (rng.data_seed), so a resumed run sees the patches an unbroken one would."""
    while True:
        if hasattr(loader.sampler, "set_epoch"):  # DistributedSampler: each epoch its own shuffle
            loader.sampler.set_epoch(epoch)
        loader.dataset.transform.set_random_state(seed=data_seed(seed, rank, epoch))
        yield from loader
        epoch += 1


def _loop(run: _Run, net: torch.nn.Module, loader, val_loader, procs: Processes, callback,
          progress: bool) -> StepClock:
    """A step per batch until `max_iterations`; a log line every `log_every`, validation every `val_every`."""
    from tqdm.auto import tqdm

    config = run.config
    log = RunLog(run.dir, write=procs.main)
    bar = tqdm(total=config.max_iterations, initial=run.iteration, desc=f"training {config.model}",
               disable=not progress or not procs.main)
    clock = StepClock(run.device, run.iteration, config.max_iterations)
    say = bar.write if progress else print  # a line between the progress bar's updates
    net.train()
    try:
        for batch in clock.waiting(_batches(loader, config.seed, procs.rank, run.iteration)):
            run.iteration += 1
            loss = clock.timed(_step, run, net, batch)
            log.loss(loss)
            bar.update()
            bar.set_postfix(loss=f"{loss:.4f}")
            measured = clock.step(run.iteration)
            if measured and procs.main:
                say(measured)
            if procs.main and _due(run.iteration, config.log_every, config.max_iterations):
                log.train(run.iteration, run.scheduler.get_last_lr()[0])
            if _due(run.iteration, config.val_every, config.max_iterations):
                if procs.main:
                    entry = _validate_and_save(run, val_loader, log, callback)
                    if "seconds" in entry and not clock.validated:
                        clock.validated = True
                        say(clock.validation_line(run.iteration, config.val_every, len(val_loader), entry["seconds"]))
                procs.barrier()
            if run.iteration >= config.max_iterations:
                break
    finally:
        bar.close()
        log.close()
    return clock


def _due(iteration: int, every: int, last: int) -> bool:
    return iteration % every == 0 or iteration == last


def _step(run: _Run, net: torch.nn.Module, batch: dict) -> float:
    """One optimisation step on a checked batch; its loss. TrainingDiverged when the loss is not finite."""
    check_batch(batch, len(run.classes))
    image = plain(batch["image"]).to(run.device, memory_format=memory_format(run.config, run.device))
    label = plain(batch["label"]).to(run.device)
    run.optimizer.zero_grad(set_to_none=True)
    with autocast(run.device, run.amp):
        loss = run.loss_fn(net(image), label)
    if not torch.isfinite(loss):
        raise TrainingDiverged(f"the loss became {loss.item()} at iteration {run.iteration} on a batch of finite "
                               f"values and known labels; training stopped and {kept_checkpoints(run.dir)}. "
                               "Lower the learning rate (--lr) or turn AMP off, then rerun.")
    run.scaler.scale(loss).backward()
    run.scaler.step(run.optimizer)
    run.scaler.update()
    run.scheduler.step()
    return loss.item()


def _validate_and_save(run: _Run, val_loader, log: RunLog, callback) -> dict:
    """Validate (rank 0), keep the best model in checkpoint_best.pt, log, and write checkpoint_last.pt."""
    entry = {"kind": "validation", "iteration": run.iteration}
    if val_loader is not None:
        t0 = time.perf_counter()
        entry.update(validate(run.model, val_loader, run.patch, run.device, run.amp, run.classes))
        entry["seconds"] = time.perf_counter() - t0
        if entry["dice_mean"] > run.best:
            run.best, run.best_iteration = entry["dice_mean"], run.iteration
            save_checkpoint(RunFiles(run.dir).checkpoint("best"), {"model": run.model.state_dict(),
                                                             "iteration": run.iteration, "metric": run.best})
    entry["best_dice_mean"], entry["best_iteration"] = run.best, run.best_iteration
    log.validation(entry)
    save_last(run.dir, run.checkpoint())
    if callback:
        callback(read_metrics(run.dir))
    return entry
