"""machinery.speed: our Adam against torch.optim.Adam(fused=True), whose update it calls without the wrapper."""

import subprocess
import sys

import torch
from helpers import ROOT, assert_same_parameters, train_steps

from machinery.speed import Adam
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
