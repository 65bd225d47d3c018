"""Profiles: the same code at different sizes, and the training recipe of each, defined once.

`smoke` runs the whole course on a CPU in minutes and still ends with a model worth looking at; `gpu`
trains for real on one GPU; `full` is the predecessor project's budget. Used by notebooks 00 and 05, the
`train` command and the benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# UNETR cuts its input into 16 x 16 x 16 cubes (fixed in MONAI) and decodes from that grid: a structure
# much thinner than a cube is seen only by the first convolution. So each profile's data must put the
# thinnest structure (the canal, ~12-16 mm front to back; a disc, ~8-12 mm high) across several voxels:
# in-plane spacing near 1 mm. See docs/recipe.md, "The training recipe, and why the first smoke model never found
# the canal". The smoke profile's patch is only 64 voxels a side (a CPU step's cost), so its grid is coarser
# (2 mm): the patch then spans 128 mm, the same field as the gpu profile's 128 voxels at 1 mm: a whole vertebra
# front to back (body to spinous process, 71-92 mm median in the real samples, up to 100) from anywhere in
# its body, and three levels head to foot; a disc is still 4-6 voxels high, the canal 6-8 voxels deep. What
# the coarser grid costs is measured: the reference masks of the real samples after the round trip to the
# training grid and back score 0.959 / 0.911 / 0.955 Dice (1 mm: 0.979 / 0.956 / 0.976), docs/recipe.md.


MIN_INPLANE_MM = 1.0  # resampled in-plane spacing floor: 8 voxels across a disc (~8 mm); finer costs 3x
LOSSES = ("dicece", "dicefocal", "dice")  # built by helpers.training.loop.build_loss
MODELS = ("unetr", "swinunetr", "unet", "segresnet", "dynunet")  # built by helpers.training.models.build_model
# how the papers and MONAI write them (the report, the comparison); DynUNet is nnU-Net's U-Net
NETWORK_NAMES = {"unetr": "UNETR", "swinunetr": "SwinUNETR", "unet": "UNet", "segresnet": "SegResNet",
                 "dynunet": "DynUNet"}


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    synth_patients: int  # synthetic patients made by notebook 00
    synth_scale: float  # 1.0 = SPIDER's real matrix sizes; 0.5 = half the pixels per row, ~1.2 mm in-plane
    patch_size: tuple[int, int, int]  # (anterior-posterior, superior-inferior, left-right) voxels: the network's order
    batch_size: int  # volumes per step; each gives `samples_per_volume` patches
    max_iterations: int
    val_every: int
    model: dict = field(default_factory=dict)  # keyword arguments for UNETR
    num_workers: int = 0
    lr: float = 1e-4  # AdamW peak learning rate, reached after `warmup` of the iterations
    warmup: float = 0.05  # share of the iterations spent warming up, then a cosine decay to 0
    samples_per_volume: int = 2
    # patch centres drawn per class (background, vertebra, disc, canal): each structure equally often, so
    # the canal (1 % of the voxels) is in the middle of as many patches as the vertebrae (4 %), and background
    # (abdomen, muscle, air) as often as two structures, so the network learns what is not spine
    class_ratios: tuple[float, float, float, float] = (2.0, 1.0, 1.0, 1.0)
    loss: str = "dicece"  # one of LOSSES
    inplane_mm: float = MIN_INPLANE_MM  # in-plane spacing floor of its data (ResampleSettings.min_inplane_mm)
    # channels-last memory on a CPU: oneDNN's convolutions of the narrow smoke UNETR run 15-20 % faster a step in
    # float32 and bfloat16 alike; for feature size 16 it gains 4 % in float32, loses 10 % in bfloat16 (docs/recipe.md)
    cpu_channels_last: bool = False


SMALL_UNETR = {"feature_size": 8, "hidden_size": 192, "mlp_dim": 768, "num_heads": 4}
PREDECESSOR_UNETR = {"feature_size": 16, "hidden_size": 768, "mlp_dim": 3072, "num_heads": 12}

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke", "CPU, small synthetic data resampled to 2 mm in-plane, 700 iterations of a narrow UNETR: a "
            "working model in minutes, float32 or bfloat16",
            synth_patients=16, synth_scale=0.5, patch_size=(64, 64, 16), batch_size=2, samples_per_volume=1,
            max_iterations=700, val_every=175, model=SMALL_UNETR, cpu_channels_last=True,
            lr=3e-3,  # a narrow network and many small steps: a large step, with warmup, is stable (docs/recipe.md)
            inplane_mm=2.0,  # 128 mm of context in a 64-voxel patch (see above; docs/recipe.md)
        ),
        Profile(
            "gpu", "one T4-class GPU, about an hour",
            synth_patients=40, synth_scale=1.0, patch_size=(128, 128, 32), batch_size=2,
            max_iterations=5000, val_every=500, model=PREDECESSOR_UNETR, num_workers=2, lr=2e-4,
        ),
        Profile(
            "full", "the predecessor project's budget: 21,000 iterations, validation every 1,000",
            synth_patients=40, synth_scale=1.0, patch_size=(128, 128, 32), batch_size=4,
            max_iterations=21000, val_every=1000, model=PREDECESSOR_UNETR, num_workers=4,
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a clear error listing the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def device_message() -> str:
    """One line telling the user which device they have and which profile fits."""
    import torch

    if torch.cuda.is_available():
        return f"GPU found ({torch.cuda.get_device_name(0)}): the 'gpu' profile trains for real."
    return ("no GPU found: the smoke profile fits this machine; switch the Colab runtime to GPU "
            "(Runtime > Change runtime type) for the full run.")


def recipe_table() -> str:
    """The profiles' recipes as the Markdown table in docs/recipe.md (a test keeps the two equal)."""
    rows = ["| profile | synthetic data | in-plane grid (mm, at least) | patch (AP x SI x LR voxels) "
            "| patches per step | patch centres (background : vertebra : disc : canal) | iterations "
            "| AdamW lr (warmup, then cosine) | loss | UNETR |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p in PROFILES.values():
        unetr = ", ".join(f"{k.replace('_size', '').replace('num_', '')} {v}" for k, v in p.model.items())
        rows.append(f"| `{p.name}` | {p.synth_patients} patients at {p.synth_scale:g} x SPIDER's matrix size "
                    f"| {p.inplane_mm:g} | {' x '.join(map(str, p.patch_size))} "
                    f"| {p.batch_size} volumes x {p.samples_per_volume} "
                    f"| {' : '.join(f'{r:g}' for r in p.class_ratios)} "
                    f"| {p.max_iterations:,} | {p.lr:g} ({p.warmup:.0%}) | `{p.loss}` | {unetr} |")
    return "\n".join(rows)
