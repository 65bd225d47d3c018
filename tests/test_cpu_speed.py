"""What makes a smoke step cheaper on a CPU changes no arithmetic: plain tensors instead of MetaTensors, GroupNorm in
place of instance norm under channels-last memory, a fused AdamW. (Their speed is measured in docs/recipe.md and the
bench, not asserted here.)"""

from __future__ import annotations

import torch
from monai.data import MetaTensor

from helpers.core.profiles import get_profile
from helpers.training.batch_guard import plain
from helpers.training.models import build_model, channels_last_norms, optimizer_for


def _unetr():
    torch.manual_seed(0)
    return build_model("unetr", get_profile("smoke").patch_size, get_profile("smoke").model)


def test_groupnorm_in_place_of_instance_norm_is_the_same_network_with_the_same_checkpoint():
    reference, swapped = _unetr(), channels_last_norms(_unetr())
    assert any(isinstance(m, torch.nn.InstanceNorm3d) for m in reference.modules())
    assert not any(isinstance(m, torch.nn.InstanceNorm3d) for m in swapped.modules())
    assert reference.state_dict().keys() == swapped.state_dict().keys()  # neither norm holds weights
    swapped.load_state_dict(reference.state_dict())
    x = torch.randn(2, 1, *get_profile("smoke").patch_size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(x)
        got = swapped.to(memory_format=torch.channels_last_3d)(x.to(memory_format=torch.channels_last_3d))
    assert torch.allclose(got, expected, atol=1e-4)


def test_norms_with_weights_or_running_statistics_are_left_alone():
    model = torch.nn.Sequential(torch.nn.InstanceNorm3d(4, affine=True), torch.nn.InstanceNorm3d(4),
                                torch.nn.BatchNorm3d(4))
    channels_last_norms(model)
    assert [type(m).__name__ for m in model] == ["InstanceNorm3d", "GroupNorm", "BatchNorm3d"]


def test_the_fused_adamw_takes_the_same_step_as_the_plain_one():
    def net():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4))

    nets = [net(), net()]
    fused = optimizer_for(nets[0], 3e-3, 1e-5)
    loop = torch.optim.AdamW(nets[1].parameters(), lr=3e-3, weight_decay=1e-5)
    assert fused.defaults["fused"] is True and not loop.defaults["fused"]
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(2))
    for model, opt in zip(nets, (fused, loop)):
        for _ in range(5):
            opt.zero_grad()
            model(x).square().mean().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        assert torch.allclose(a, b, atol=1e-6)
    assert not torch.equal(nets[0][0].weight, net()[0].weight)  # it did move


def test_a_metatensor_becomes_a_plain_tensor_with_the_same_values():
    meta = MetaTensor(torch.arange(6.0).reshape(1, 2, 3), meta={"filename_or_obj": "a.nii"})
    out = plain(meta)
    assert type(out) is torch.Tensor and torch.equal(out, meta.as_tensor())
    assert type(plain([1, 2])) is torch.Tensor
