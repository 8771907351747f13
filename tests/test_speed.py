"""machinery.speed: our Adam against torch.optim.Adam(fused=True), whose update it calls without the wrapper,
and our gradient clipping against torch.nn.utils.clip_grad_norm_, whose arithmetic it does."""

import subprocess
import sys

import pytest
import torch
from helpers import ROOT, assert_same_parameters, train_steps

from machinery.speed import Adam, clip_grad_norm_
from Spiking_PPO import ActorCritic


def twin_models(seed=0):
    torch.manual_seed(seed)
    ours, torchs = ActorCritic(4, 2, 32), ActorCritic(4, 2, 32)
    torchs.load_state_dict(ours.state_dict())
    return ours, torchs


def test_steps_are_bit_identical_to_torch_fused_adam():
    ours, torchs = twin_models()
    log_std = ours.log_std.detach().clone()
    train_steps(ours, Adam(ours.parameters(), lr=1e-2), 25, seed=1)
    train_steps(torchs, torch.optim.Adam(torchs.parameters(), lr=1e-2, fused=True), 25, seed=1)
    assert_same_parameters(ours, torchs)
    assert torch.equal(ours.log_std, log_std)
    assert not torch.equal(ours.actor[0].weight, twin_models()[0].actor[0].weight)


def test_state_dict_goes_into_torch_adam_and_back():
    ours, torchs = twin_models()
    ours_opt = Adam(ours.parameters(), lr=1e-2)
    train_steps(ours, ours_opt, 10, seed=2)
    torchs.load_state_dict(ours.state_dict())
    torch_opt = torch.optim.Adam(torchs.parameters(), lr=1.0, fused=True)
    torch_opt.load_state_dict(ours_opt.state_dict())
    assert torch_opt.param_groups[0]["lr"] == 1e-2
    # Both continue as one optimizer would; then the state comes back the other way.
    train_steps(ours, ours_opt, 10, seed=3)
    train_steps(torchs, torch_opt, 10, seed=3)
    assert_same_parameters(ours, torchs)
    back = Adam(ours.parameters(), lr=1.0)
    back.load_state_dict(torch_opt.state_dict())
    for a, b in zip(back.state_dict()["state"].values(), ours_opt.state_dict()["state"].values(), strict=True):
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("max_norm", [0.05, 1e6])  # clipping, and a norm below the bound (gradients kept)
def test_clipping_is_bit_identical_to_torch_clip_grad_norm(max_norm):
    ours, torchs = twin_models()
    for model in (ours, torchs):
        torch.manual_seed(3)
        model.zero_grad()
        (model(torch.randn(64, 4))[0].loc.square().sum() + model(torch.randn(64, 4))[1].sum()).backward()
    ours.log_std.grad = torchs.log_std.grad = None  # a parameter without a gradient is left out, as torch does
    before = [p.grad.clone() for p in ours.parameters() if p.grad is not None]
    norm = clip_grad_norm_(list(ours.parameters()), max_norm)
    torch_norm = torch.nn.utils.clip_grad_norm_(torchs.parameters(), max_norm)
    assert torch.equal(norm, torch_norm) and (norm > max_norm) == (max_norm < 1)
    grads = [p.grad for p in ours.parameters() if p.grad is not None]
    torch_grads = [p.grad for p in torchs.parameters() if p.grad is not None]
    assert len(grads) == len(torch_grads) == len(before) > 0
    assert all(torch.equal(g, h) for g, h in zip(grads, torch_grads, strict=True))
    assert all(torch.equal(g, b) for g, b in zip(grads, before, strict=True)) == (max_norm > 1)


def test_training_does_not_import_the_compiler(runs_dir):
    """What the class is for: torch.optim would import torch._dynamo (seconds of start-up)."""
    code = (
        "import sys, PPO, Spiking_PPO;"
        f"Spiking_PPO.main(PPO.AGENT, ['--max-steps', '8', '--num-steps', '4', '--mini-batch-size', '4', "
        f"'--quiet', '--runs-dir', {str(runs_dir)!r}]);"
        "print('torch._dynamo' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-1] == "False"
