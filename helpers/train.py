"""One training loop for the notebook, the command line and torchrun (DistributedDataParallel).

A run folder holds `config.json` (everything needed to reproduce and to predict), `checkpoint_last.pt`,
`checkpoint_prev.pt` (the one before it) and `checkpoint_best.pt` (helpers/checkpoints.py: written
atomically, loaded with weights_only=True), and `metrics.jsonl` (one line per logged step and per
validation). Rerunning the same command resumes from the last readable checkpoint at its iteration,
with optimizer, scheduler, scaler and RNG states. Every batch is checked before the step
(helpers/batches.py), so bad data stops training with the series named instead of as a divergence.
"""

from __future__ import annotations

import json
import os
import random
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .axes import AP, LR, SI, in_monai_order, monai_axis, monai_order
from .batches import check_batch
from .checkpoints import kept_checkpoints, load_weights, resume_state, save_checkpoint, save_last
from .errors import DataError, KitError
from .files import write_text_atomic
from .labels import FOREGROUND, STRUCTURES
from .models import amp_dtype, autocast, build_model, parameter_count, sliding_window_logits
from .profiles import LOSSES, get_profile
from .seed import seed_class_lut, seed_class_structures

KEYS = ("image", "label")
MEMORY_CACHE_LIMIT = 0.25  # cache in RAM when the data takes less than this share of it, else on disk


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
    patch_size: list[int] | None = None  # canonical (LR, SI, AP); None: the profile's
    batch_size: int | None = None
    samples_per_volume: int | None = None  # None: the profile's
    lr: float | None = None  # None: the profile's
    class_ratios: list[float] | None = None  # patch centres per class; None: the profile's; [] = the seed's pos/neg
    loss: str | None = None  # one of LOSSES; None: the profile's
    warmup: float | None = None  # share of the iterations warming up the learning rate; None: the profile's
    weight_decay: float = 1e-5
    seed: int = 0
    num_workers: int | None = None
    log_every: int = 5
    amp: bool = True  # reduced precision where the device computes it natively (helpers.models.amp_dtype)
    augment: bool = True  # False: patches only (the seed trained without augmentation)
    model_options: dict = field(default_factory=dict)
    preprocessing: dict = field(default_factory=dict)
    data: dict = field(default_factory=dict)  # where the data came from, and whether it is synthetic

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


# ---------------------------------------------------------------- data
def load_datalist(path: str | Path) -> dict[str, list[dict]]:
    """Training and validation lists with absolute paths; a clear error for every kind of bad datalist."""
    from monai.data import load_decathlon_datalist

    path = Path(path)
    if not path.is_file():
        raise DataError(path, "datalist not found; write one with notebook 04 or `python -m helpers datalist`")
    try:
        raw = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, f"is not valid JSON ({e})") from None
    out = {}
    for part in ("training", "validation"):
        if not isinstance(raw.get(part), list):
            raise DataError(path, f"has no '{part}' list")
        for i, item in enumerate(raw[part]):
            missing = [k for k in KEYS if k not in item] if isinstance(item, dict) else list(KEYS)
            if missing:
                raise DataError(path, f"{part}[{i}] lacks the key(s) {missing}; each entry needs 'image' and 'label'")
        out[part] = load_decathlon_datalist(str(path), data_list_key=part) if raw[part] else []
        for item in out[part]:
            for key in KEYS:
                if not Path(item[key]).is_file():
                    raise DataError(item[key], f"listed in {path} ({part}) but not found")
    if not out["training"]:
        raise DataError(path, "the training list is empty")
    out["preprocessing"] = raw.get("preprocessing", {})
    out["data"] = raw.get("data", {})
    return out


def class_structures(config: dict) -> np.ndarray:
    """Structure index of each output class: identity for structures, the seed's 20 classes for instances."""
    if config.get("preprocessing", {}).get("labels") == "instances":
        return seed_class_structures()
    return np.arange(len(STRUCTURES))


class _SeedClasses:
    """SPIDER values -> the seed's class indices (a picklable transform for data-loader workers)."""

    def __init__(self):
        self.lut = torch.as_tensor(seed_class_lut())

    def __call__(self, label):
        return self.lut[torch.as_tensor(label).long()].to(torch.uint8)


def transforms(patch: tuple[int, ...], samples: int, train: bool, instances: bool = False, augment: bool = True,
               class_ratios: list[float] | None = None):
    """Deterministic loading (cached), then random patches and spine-MR augmentation for training.

    `patch` is in MONAI order (AP, SI, LR). `class_ratios` (background, vertebra, disc, canal) draws patch
    centres per class (MONAI's RandCropByLabelClassesd); empty or None: half on any structure, half
    anywhere (RandCropByPosNegLabeld, as the seed's recipe).
    """
    from monai import transforms as T

    det = [T.LoadImaged(KEYS, reader="NibabelReader"), T.EnsureChannelFirstd(KEYS),
           T.EnsureTyped("image", dtype=torch.float32)]
    if instances:  # SPIDER values -> the seed's 20 classes; vertebrae and discs above level 9 become background
        det.append(T.Lambdad("label", _SeedClasses()))
    det += [T.EnsureTyped("label", dtype=torch.uint8), T.SpatialPadd(KEYS, spatial_size=patch)]
    balanced = bool(class_ratios) and not instances
    if train and balanced:  # where each class lies, computed once and cached with the volume
        det.append(T.ClassesToIndicesd("label", num_classes=len(class_ratios), indices_postfix="_class_indices"))
    if not train:
        return T.Compose(det)
    if balanced:
        crop = T.RandCropByLabelClassesd(KEYS, "label", spatial_size=patch, ratios=list(class_ratios),
                                         num_classes=len(class_ratios), num_samples=samples,
                                         indices_key="label_class_indices", warn=False)
    else:
        crop = T.RandCropByPosNegLabeld(KEYS, "label", spatial_size=patch, pos=1, neg=1, num_samples=samples)
    lr_axis = monai_axis(LR)  # flip left-right only; anterior/posterior and up/down are not symmetric
    rotate_range = in_monai_order({LR: 0.2, SI: 0.05, AP: 0.05})  # radians about each axis: mostly sagittal
    rand = [crop,
            T.RandFlipd(KEYS, prob=0.5, spatial_axis=lr_axis),
            T.RandAffined(KEYS, prob=0.3, rotate_range=rotate_range, scale_range=(0.1, 0.1, 0.1),
                          mode=("bilinear", "nearest"), padding_mode="zeros"),
            T.RandScaleIntensityd("image", factors=0.1, prob=0.5),
            T.RandShiftIntensityd("image", offsets=0.1, prob=0.5),
            T.RandAdjustContrastd("image", prob=0.3, gamma=(0.7, 1.5))]
    tail = [T.DeleteItemsd("label_class_indices")] if balanced else []  # not needed past the crop
    return T.Compose(det + (rand if augment else rand[:1]) + tail)


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


def preview_patches(config: TrainConfig, volumes: int = 2) -> list[dict]:
    """The augmented patches that training draws from `volumes` training volumes, as the network gets them."""
    config = config.resolved()
    data = load_datalist(config.datalist)
    instances = len(class_structures({"preprocessing": data["preprocessing"]})) != len(STRUCTURES)
    chain = transforms(monai_order(config.patch_size), config.samples_per_volume, True, instances,
                       config.augment, config.class_ratios)
    chain.set_random_state(seed=config.seed)
    items = data["training"]
    step = max(1, len(items) // volumes)
    return [patch for item in items[::step][:volumes] for patch in chain(item)]


def _dataset(items: list[dict], transform, run_dir: Path, num_workers: int):
    from monai.data import CacheDataset, PersistentDataset

    size = sum(Path(i["image"]).stat().st_size * 4 for i in items)  # rough: compressed -> float32 in RAM
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if size < MEMORY_CACHE_LIMIT * ram:
        return CacheDataset(items, transform, cache_rate=1.0, num_workers=max(1, num_workers), progress=False)
    return PersistentDataset(items, transform, cache_dir=run_dir / "cache")


# ---------------------------------------------------------------- checkpoints
def _rng_state() -> dict:
    np_state = np.random.get_state()
    py_version, py_state, _ = random.getstate()
    state = {"torch": torch.get_rng_state(), "python": list(py_state), "python_version": py_version,
             "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate((state["python_version"], tuple(state["python"]), None))
    n = state["numpy"]
    np.random.set_state((n[0], np.array(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# ---------------------------------------------------------------- validation
def validate(model, loader, patch, device, amp: bool, classes: np.ndarray | None = None) -> dict[str, float]:
    """Sliding-window Dice per structure (background excluded) and their mean; `classes` maps outputs to
    structures, so instance-class models are scored the same way."""
    from monai.metrics import compute_dice  # functional: no all-gather, so rank 0 can validate alone
    from monai.networks.utils import one_hot

    scores = []
    lut = torch.as_tensor(classes if classes is not None else np.arange(len(STRUCTURES)), device=device)
    model.eval()
    with torch.no_grad(), autocast(device, amp):
        for batch in loader:
            check_batch(batch, len(lut), "a validation batch")
            image, label = batch["image"].to(device), batch["label"].to(device)
            logits = sliding_window_logits(model, image, patch)
            pred = one_hot(lut[logits.argmax(1, keepdim=True)], len(STRUCTURES))
            truth = one_hot(lut[label.long()], len(STRUCTURES))
            scores.append(compute_dice(pred, truth, include_background=False,
                                       ignore_empty=True).cpu().numpy())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        per = np.nanmean(np.concatenate(scores), axis=0)  # a structure absent from a case does not count
    model.train()
    result = {f"dice_{name}": float(v) for name, v in zip(FOREGROUND, per)}
    result["dice_mean"] = float(np.nanmean(per))
    return result


# ---------------------------------------------------------------- the loop
def _dist() -> tuple[int, int, bool]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank = torch.distributed.get_rank() if world > 1 else 0
    return rank, world, world > 1


def _check_resumable(run_dir: Path, config: TrainConfig) -> None:
    path = run_dir / "config.json"
    if not path.is_file():
        return
    old = json.loads(path.read_text())
    for key in ("model", "patch_size", "model_options", "datalist"):
        if old.get(key) != asdict(config)[key]:
            raise KitError(f"{run_dir} holds a run with another {key} ({old.get(key)!r}); "
                           "choose a new run folder, or delete this one to start over")


def train(config: TrainConfig, callback=None, progress: bool = True) -> dict:
    """Train until `max_iterations`; resume from `run_dir/checkpoint_last.pt` when it exists."""
    from monai.data import DataLoader, DistributedSampler
    from monai.optimizers import WarmupCosineSchedule
    from monai.utils import set_determinism
    from tqdm.auto import tqdm

    rank, world, distributed = _dist()
    config = config.resolved()
    run_dir = Path(config.run_dir)
    data = load_datalist(config.datalist)
    config.preprocessing, config.data = data["preprocessing"], data["data"]
    _check_resumable(run_dir, config)
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text_atomic(run_dir / "config.json", json.dumps(asdict(config), indent=1))
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', 0))}" if torch.cuda.is_available() else "cpu")
    amp = config.amp  # float16 on CUDA, bfloat16 on a CPU with native support (models.amp_dtype)
    patch = monai_order(config.patch_size)

    set_determinism(config.seed + rank)
    classes = class_structures(asdict(config))
    instances = len(classes) != len(STRUCTURES)
    model = build_model(config.model, patch, config.model_options, out_channels=len(classes)).to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    scheduler = WarmupCosineSchedule(optimizer, warmup_steps=max(1, round(config.warmup * config.max_iterations)),
                                     t_total=config.max_iterations)
    scaler = torch.amp.GradScaler(device.type, enabled=amp_dtype(device, amp) == torch.float16)
    start, best, best_iteration = 0, -1.0, 0
    resumed = resume_state(run_dir, log=print if rank == 0 else lambda _: None)
    if resumed:
        state, path = resumed
        load_weights(model, state["model"], path, f"this run's {config.model} ({len(classes)} classes)")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        start, best, best_iteration = state["iteration"], state["best_metric"], state["best_iteration"]
        _set_rng_state(state["rng"])
        if rank == 0:
            print(f"resuming {run_dir} from iteration {start}")
            kept = [e for e in read_metrics(run_dir) if e["iteration"] <= start]  # drop what the checkpoint lacks
            write_text_atomic(run_dir / "metrics.jsonl", "".join(json.dumps(e) + "\n" for e in kept))
    if start >= config.max_iterations:
        if rank == 0:
            print(f"{run_dir} already finished ({start} iterations); best mean Dice {best:.4f}")
        return {"iteration": start, "best_metric": best, "best_iteration": best_iteration}
    # UNETR's ViT keeps parameters the segmentation output never uses
    net = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=True) if distributed else model

    train_ds = _dataset(data["training"], transforms(patch, config.samples_per_volume, True, instances,
                                                     config.augment, config.class_ratios), run_dir, config.num_workers)
    sampler = DistributedSampler(train_ds, shuffle=True) if distributed else None
    loader = DataLoader(train_ds, batch_size=config.batch_size, shuffle=sampler is None, sampler=sampler,
                        num_workers=config.num_workers, drop_last=False)
    val_loader = None
    if rank == 0 and data["validation"]:
        val_loader = DataLoader(_dataset(data["validation"], transforms(patch, 1, False, instances), run_dir,
                                         config.num_workers), batch_size=1, num_workers=config.num_workers)
    loss_fn = build_loss(config.loss)

    def batches():
        epoch = start
        while True:
            if sampler is not None:
                sampler.set_epoch(epoch)
            train_ds_seed = config.seed + 1000 * rank + epoch  # data stream depends on where we are, not on history
            loader.dataset.transform.set_random_state(seed=train_ds_seed % (2**32))
            yield from loader
            epoch += 1

    metrics_path = run_dir / "metrics.jsonl"
    writer = _tensorboard(run_dir) if rank == 0 else None
    bar = tqdm(total=config.max_iterations, initial=start, desc=f"training {config.model}",
               disable=not progress or rank != 0)
    stream, running, tic = batches(), [], time.perf_counter()
    iteration = start
    net.train()
    for batch in stream:
        iteration += 1
        try:
            check_batch(batch, len(classes))
        except DataError:
            bar.close()
            raise
        image, label = batch["image"].to(device), batch["label"].to(device)
        optimizer.zero_grad(set_to_none=True)
        with autocast(device, amp):
            loss = loss_fn(net(image), label)
        if not torch.isfinite(loss):
            bar.close()
            raise TrainingDiverged(f"the loss became {loss.item()} at iteration {iteration} on a batch of finite "
                                   f"values and known labels; training stopped and {kept_checkpoints(run_dir)}. "
                                   "Lower the learning rate (--lr) or turn AMP off, then rerun.")
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        running.append(loss.item())
        bar.update()
        bar.set_postfix(loss=f"{running[-1]:.4f}")
        if rank == 0 and (iteration % config.log_every == 0 or iteration == config.max_iterations):
            seconds = time.perf_counter() - tic
            entry = {"kind": "train", "iteration": iteration, "loss": float(np.mean(running)),
                     "lr": scheduler.get_last_lr()[0], "iterations_per_s": len(running) / max(seconds, 1e-9)}
            _append(metrics_path, entry)
            if writer:
                writer.add_scalar("train/loss", entry["loss"], iteration)
            running, tic = [], time.perf_counter()
        if iteration % config.val_every == 0 or iteration == config.max_iterations:
            if rank == 0:
                entry = {"kind": "validation", "iteration": iteration}
                if val_loader is not None:
                    t0 = time.perf_counter()
                    entry.update(validate(model, val_loader, patch, device, amp, classes))
                    entry["seconds"] = time.perf_counter() - t0
                    if entry["dice_mean"] > best:
                        best, best_iteration = entry["dice_mean"], iteration
                        save_checkpoint(run_dir / "checkpoint_best.pt", {"model": model.state_dict(),
                                                                         "iteration": iteration, "metric": best})
                entry["best_dice_mean"], entry["best_iteration"] = best, best_iteration
                _append(metrics_path, entry)
                if writer:
                    for k, v in entry.items():
                        if k.startswith("dice_"):
                            writer.add_scalar(f"val/{k}", v, iteration)
                save_last(run_dir, {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                                       "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(),
                                       "iteration": iteration, "best_metric": best,
                                       "best_iteration": best_iteration, "rng": _rng_state()})
                if callback:
                    callback(read_metrics(run_dir))
            if distributed:
                torch.distributed.barrier()
        if iteration >= config.max_iterations:
            break
    bar.close()
    if writer:
        writer.close()
    if distributed:
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()
    summary = {"iteration": iteration, "best_metric": best, "best_iteration": best_iteration,
               "parameters": parameter_count(model)}
    if rank == 0:
        print(f"finished {iteration} iterations; best mean Dice {best:.4f} at iteration {best_iteration} -> {run_dir}")
    return summary


def _append(path: Path, entry: dict) -> None:
    with open(path, "a") as f:
        f.write(json.dumps(entry) + "\n")


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def read_metrics(run_dir: str | Path) -> list[dict]:
    """Every logged entry of a run (a half-written last line from a crash is ignored)."""
    path = Path(run_dir) / "metrics.jsonl"
    entries = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                entries.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return entries

