"""Networks by name, so UNETR, SwinUNETR, UNet, SegResNet and DynUNet (nnU-Net's U-Net) run in the same loop.

Also the sliding window that segments a whole volume from patches and the precision a run computes in: one
definition for validation in the training loop and for inference (helpers/inference/), which imports them from here.

Used by notebooks 05 (training), 06 and 07 (prediction, through helpers.inference.predict).
"""

from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager
from functools import cache
from pathlib import Path

import torch

from helpers.core.errors import KitError
from helpers.core.profiles import MODELS as MODELS  # re-exported: the networks by name
from helpers.data.labels import STRUCTURES


def network_def(name: str, patch_size: tuple[int, int, int], options: dict | None = None,
                out_channels: int = len(STRUCTURES)) -> dict:
    """A network as a MONAI bundle config entry: {"_target_": its class in monai.networks.nets, its arguments}.
    `patch_size` (AP, SI, LR), the kit's order; `options` are the network's own keywords. One definition for training,
    prediction and the exported bundle (helpers/inference/bundle.py)."""
    options = dict(options or {})
    if name == "unetr":
        return {"_target_": "UNETR", "in_channels": 1, "out_channels": out_channels, "img_size": list(patch_size),
                "norm_name": "instance", "res_block": True, **options}
    if name == "swinunetr":
        return {"_target_": "SwinUNETR", "in_channels": 1, "out_channels": out_channels,
                "feature_size": options.get("feature_size", 12), "spatial_dims": 3}
    if name == "unet":
        return {"_target_": "UNet", "spatial_dims": 3, "in_channels": 1, "out_channels": out_channels,
                "channels": [16, 32, 64, 128, 256], "strides": [2, 2, 2, 2], "num_res_units": 2, "norm": "instance"}
    if name == "segresnet":
        return {"_target_": "SegResNet", "spatial_dims": 3, "in_channels": 1, "out_channels": out_channels,
                "init_filters": 8}
    if name == "dynunet":
        kernels, strides = dynunet_stages(patch_size)
        filters = options.get("filters") or [min(32 * 2**i, 320) for i in range(len(strides))]
        return {"_target_": "DynUNet", "spatial_dims": 3, "in_channels": 1, "out_channels": out_channels,
                "kernel_size": kernels, "strides": strides, "upsample_kernel_size": strides[1:],
                "filters": list(filters)[: len(strides)], "norm_name": ["INSTANCE", {"affine": True}],
                "res_block": bool(options.get("res_block", False))}
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def dynunet_stages(patch_size: tuple[int, ...] | list[int], smallest: int = 4,
                   most: int = 5) -> tuple[list[list[int]], list[list[int]]]:
    """nnU-Net's rule for its U-Net (MONAI's DynUNet) on a patch (AP, SI, LR): halve each axis while the feature map
    stays at least `smallest` voxels (and even), at most `most` times; an axis halved fewer times than the others
    keeps stride 1 in the first stages (nnU-Net's thick-slice axis). 3 x 3 x 3 kernels throughout (the kit's grids
    are near-isotropic: 2 mm in-plane, 3.3-4.4 mm slices on the smoke profile's grid). (kernels, strides) per stage;
    the first stage has stride 1."""
    downs = []
    for side in (int(v) for v in patch_size):
        k = 0
        while k < most and side % 2 ** (k + 1) == 0 and side // 2 ** (k + 1) >= smallest:
            k += 1
        downs.append(k)
    depth = max(downs)
    strides = [[1, 1, 1]] + [[2 if stage >= depth - k else 1 for k in downs] for stage in range(depth)]
    return [[3, 3, 3] for _ in strides], strides


# each network halves its input this many times (UNETR: its fixed 16-voxel cubes), so every patch side must be a
# multiple of this (DynUNet halves each side as often as it allows, dynunet_stages: at least 3 times from 32 voxels)
PATCH_MULTIPLE = {"unetr": 16, "swinunetr": 32, "unet": 16, "segresnet": 8, "dynunet": 8}


def require_patch_fits(name: str, patch_size: tuple[int, ...] | list[int]) -> None:
    """A patch the network cannot take is refused in one line, with the nearest sides it can take."""
    multiple = PATCH_MULTIPLE.get(name)
    if multiple is None or all(int(v) % multiple == 0 for v in patch_size):
        return
    fits = [max(multiple, round(int(v) / multiple) * multiple) for v in patch_size]
    raise KitError(f"{name} needs every patch side a multiple of {multiple}; the patch {tuple(patch_size)} (AP x SI x "
                   f"LR) is not: train it with --patch-size {','.join(map(str, fits))} "
                   f"(TrainConfig(patch_size={fits}) in notebook 05)")


def build_model(name: str, patch_size: tuple[int, int, int], options: dict | None = None,
                out_channels: int = len(STRUCTURES)) -> torch.nn.Module:
    """A 3D segmentation network; `patch_size` (AP, SI, LR); `options` are the network's own keywords."""
    from monai.networks import nets

    arguments = network_def(name, patch_size, options, out_channels)
    return getattr(nets, arguments.pop("_target_"))(**arguments)


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


# how a whole volume is segmented from patches, in validation and inference alike: windows overlapping by half,
# blended with a Gaussian so that each voxel's answer comes mostly from windows that see it near their centre,
# with context on every side (a patch's border voxels are its least reliable)
SLIDING_WINDOW = {"sw_batch_size": 4, "overlap": 0.5, "mode": "gaussian"}


def channels_last_norms(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with each instance norm (no affine, no running statistics: MONAI's default) replaced in place by the
    same function as a GroupNorm of one group per channel. Neither holds weights, so checkpoints are unchanged; on a
    CPU in channels-last memory PyTorch's instance norm copies its input to contiguous memory and back, GroupNorm's
    kernel does not: 7 % of a smoke step in float32. In bfloat16 autocast GroupNorm is the slower one (a step 0.20 s
    instead of 0.11), so the loop swaps only for float32 (docs/recipe.md)."""
    for name, child in model.named_children():
        if isinstance(child, torch.nn.modules.instancenorm._InstanceNorm) and not (
                child.affine or child.track_running_stats):
            setattr(model, name, torch.nn.GroupNorm(child.num_features, child.num_features, eps=child.eps,
                                                    affine=False))
        else:
            channels_last_norms(child)
    return model


def optimizer_for(model: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW, fused (one kernel for all parameters) where PyTorch has it for the weights' device: on a CPU a smoke
    step 10 % faster than the loop over parameters, the same arithmetic."""
    device = next(model.parameters()).device.type
    return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay,
                             fused=True if device in ("cpu", "cuda") else None)


def sliding_window_logits(model: torch.nn.Module, image: torch.Tensor,
                          patch_size: tuple[int, int, int]) -> torch.Tensor:
    """Logits of a whole (batch, channel, *spatial) volume from overlapping patches (MONAI's sliding window)."""
    from monai.inferers import sliding_window_inference

    return sliding_window_inference(image, patch_size, predictor=model, **SLIDING_WINDOW)


# ---------------------------------------------------------------- reduced precision
# "float32" keeps a CPU run in float32 even where the CPU computes bfloat16 natively: what most laptops and Colab's CPU
# runtimes run, measured on any machine (tools/bench.py, docs/setup.md, "How long, on which CPU"). "auto" (the default):
# bfloat16 where native.
CPU_PRECISION_ENV = "SPIDER_KIT_CPU_PRECISION"


@cache
def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bfloat16 arithmetic in hardware (AVX512-BF16 or AMX; read from /proc/cpuinfo).
    Elsewhere bfloat16 is emulated and slower than float32, so the kit keeps float32 there."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return re.search(r"\b(avx512_bf16|amx_bf16)\b", flags) is not None


def cpu_precision() -> str:
    """The precision of a CPU run here: "bfloat16" where the CPU computes it natively and SPIDER_KIT_CPU_PRECISION
    does not ask for float32, else "float32"."""
    wanted = os.environ.get(CPU_PRECISION_ENV, "auto").strip().lower()
    if wanted not in ("auto", "float32"):
        raise KitError(f"{CPU_PRECISION_ENV}={wanted!r}: use 'auto' (bfloat16 where the CPU computes it natively) "
                       "or 'float32'")
    return "bfloat16" if wanted == "auto" and cpu_has_native_bf16() else "float32"


def amp_dtype(device: torch.device, amp: bool = True) -> torch.dtype | None:
    """The reduced precision a run uses on `device`, or None for float32: float16 on a CUDA GPU (with a gradient
    scaler), bfloat16 on a CPU that computes it natively (`cpu_precision`; same exponent range as float32, so no
    scaler). Elsewhere float32: emulated bfloat16 is slower than float32."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.float16
    return torch.bfloat16 if device.type == "cpu" and cpu_precision() == "bfloat16" else None


def precision_note(device: torch.device, amp: bool = True) -> str:
    """The precision of a run on `device`, and why, in a few words (the resource check's first line)."""
    dtype = amp_dtype(device, amp)
    if dtype is not None:
        where = ", native on this CPU" if device.type == "cpu" else ""
        return f"{str(dtype).removeprefix('torch.')} autocast{where}"
    if device.type != "cpu" or not amp:
        return "float32"
    if cpu_has_native_bf16():
        return f"float32: {CPU_PRECISION_ENV}=float32"
    return "float32: this CPU has no native bfloat16"


def autocast(device: torch.device, amp: bool = True) -> AbstractContextManager:
    """torch.autocast in the precision `amp_dtype` chooses (a no-op context for float32)."""
    dtype = amp_dtype(device, amp)
    return torch.autocast(device.type, dtype=dtype, enabled=dtype is not None)
