"""Profiles: the same code at different sizes. `smoke` runs on a CPU in minutes; `gpu` and `full` train."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    synth_patients: int  # synthetic patients made by notebook 00
    synth_scale: float  # 1.0 = SPIDER's real matrix sizes; smaller = coarser and faster
    patch_size: tuple[int, int, int]  # (left-right, superior-inferior, anterior-posterior) voxels
    batch_size: int
    max_iterations: int
    val_every: int
    model: dict = field(default_factory=dict)  # keyword arguments for the network
    num_workers: int = 0
    lr: float = 1e-4  # the seed's AdamW learning rate

    def as_dict(self) -> dict:
        return asdict(self)


SMALL_UNETR = {"feature_size": 8, "hidden_size": 192, "mlp_dim": 768, "num_heads": 4}
SEED_UNETR = {"feature_size": 16, "hidden_size": 768, "mlp_dim": 3072, "num_heads": 12}

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "smoke", "CPU, small synthetic data, a few dozen iterations: checks the pipeline in minutes",
            synth_patients=8, synth_scale=0.25, patch_size=(16, 64, 64), batch_size=2,
            max_iterations=40, val_every=20, model=SMALL_UNETR,
            lr=1e-3,  # a few dozen steps need a bigger step than the seed's 1e-4 to learn anything
        ),
        Profile(
            "gpu", "one T4-class GPU, about an hour",
            synth_patients=40, synth_scale=1.0, patch_size=(32, 128, 128), batch_size=2,
            max_iterations=5000, val_every=500, model=SEED_UNETR, num_workers=2,
        ),
        Profile(
            "full", "the seed project's budget: 21,000 iterations, validation every 1,000",
            synth_patients=40, synth_scale=1.0, patch_size=(32, 128, 128), batch_size=4,
            max_iterations=21000, val_every=1000, model=SEED_UNETR, num_workers=4,
        ),
    )
}


def get_profile(name: str) -> Profile:
    """The profile called `name`, or a clear error listing the choices."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}") from None


def suggest_profile() -> str:
    """'gpu' when CUDA is available, else 'smoke'."""
    import torch

    return "gpu" if torch.cuda.is_available() else "smoke"


def device_message() -> str:
    """One line telling the user which device they have and which profile fits."""
    import torch

    if torch.cuda.is_available():
        return f"GPU found ({torch.cuda.get_device_name(0)}): the 'gpu' profile trains for real."
    return ("no GPU found: the smoke profile fits this machine; switch the Colab runtime to GPU "
            "(Runtime > Change runtime type) for the full run.")
