"""Networks by name, so UNETR, SwinUNETR, UNet and SegResNet run in the same loop.

Used by notebooks 05 (training) and 06 (prediction, through helpers.evaluate).
"""

from __future__ import annotations

import torch

from .axes import monai_order as monai_order  # re-exported: patch sizes in MONAI's order (notebook 05)
from .labels import STRUCTURES

MODELS = ("unetr", "swinunetr", "unet", "segresnet")


def build_model(name: str, patch_size: tuple[int, int, int], options: dict | None = None,
                out_channels: int = len(STRUCTURES)) -> torch.nn.Module:
    """A 3D segmentation network; `patch_size` in MONAI order; `options` are the network's own keywords."""
    from monai.networks import nets

    options = dict(options or {})
    if name == "unetr":
        return nets.UNETR(in_channels=1, out_channels=out_channels, img_size=patch_size, norm_name="instance",
                          res_block=True, **options)
    if name == "swinunetr":
        return nets.SwinUNETR(in_channels=1, out_channels=out_channels, feature_size=options.get("feature_size", 12),
                              spatial_dims=3)
    if name == "unet":
        return nets.UNet(spatial_dims=3, in_channels=1, out_channels=out_channels, channels=(16, 32, 64, 128, 256),
                         strides=(2, 2, 2, 2), num_res_units=2, norm="instance")
    if name == "segresnet":
        return nets.SegResNet(spatial_dims=3, in_channels=1, out_channels=out_channels, init_filters=8)
    raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODELS)}")


def parameter_count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
