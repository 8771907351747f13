"""The CUDA path (--device cuda): the spiking fast path's torch kernels on the GPU, our Adam there,
and both scripts training, saving, replaying and resuming there from the command line.

Skipped where torch sees no CUDA device, as on CI's machines; the README ("The CUDA path, on a GPU") says
where they last ran and passed.
"""

import pytest
import torch
from helpers import (
    TOL,
    assert_same_parameters,
    fast_and_reference,
    loss_and_grads,
    run_script,
    scalars,
    short_run,
    train_steps,
)

from machinery.speed import Adam
from Spiking_PPO import ActorCritic

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (the GPU path)")
CUDA = torch.device("cuda")


def inputs(batch, seed, device, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    x, action, target = (
        torch.randn(batch, 4, generator=g) * scale,
        torch.randn(batch, 2, generator=g),
        torch.randn(batch, 1, generator=g),
    )
    return x.to(device), action.to(device), target.to(device)


@pytest.mark.parametrize("soft_reset", [False, True])
@pytest.mark.parametrize("hidden_layers", [1, 3])
@pytest.mark.parametrize("T", [16, 5])
def test_the_fast_path_on_the_gpu_matches_the_reference_there(hidden_layers, T, soft_reset):
    """The torch kernels that run off the CPU, on the GPU: the step-by-step network's outputs and gradients."""
    nets = fast_and_reference(4, 2, 32, T, seed=T, hidden_layers=hidden_layers, soft_reset=soft_reset)
    fast, reference = (m.to(CUDA) for m in nets)
    x, action, target = inputs(256, T, CUDA)
    dist_f, value_f, grads_f = loss_and_grads(fast, x, action, target)
    dist_r, value_r, grads_r = loss_and_grads(reference, x, action, target)
    assert value_f.device.type == "cuda"
    torch.testing.assert_close(dist_f.loc, dist_r.loc, **TOL)
    torch.testing.assert_close(value_f, value_r, **TOL)
    for name in grads_r:
        torch.testing.assert_close(grads_f[name], grads_r[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("hidden_layers", [1, 2])
def test_the_gpu_computes_what_the_cpus_numba_kernels_compute(hidden_layers):
    """Weights and inputs on a grid of powers of two make every sum exact on both devices, so the
    same neurons spike on both and the outputs and gradients differ by rounding only (an input a
    rounding away from the threshold would otherwise flip a spike, on either device)."""
    torch.manual_seed(11)
    cpu = ActorCritic(4, 2, 32, T=16, hidden_layers=hidden_layers)
    with torch.no_grad():
        for p in cpu.parameters():
            p.copy_((p * 64).round() / 64)
    gpu = ActorCritic(4, 2, 32, T=16, hidden_layers=hidden_layers).to(CUDA)
    gpu.load_state_dict(cpu.state_dict())
    x, action, target = inputs(256, 3, "cpu")
    x = (x * 8).round() / 8
    dist_c, value_c, grads_c = loss_and_grads(cpu, x, action, target)
    dist_g, value_g, grads_g = loss_and_grads(gpu, x.to(CUDA), action.to(CUDA), target.to(CUDA))
    torch.testing.assert_close(dist_g.loc.cpu(), dist_c.loc, **TOL)
    torch.testing.assert_close(value_g.cpu(), value_c, **TOL)
    for name in grads_c:
        torch.testing.assert_close(grads_g[name].cpu(), grads_c[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")


def test_our_adam_on_the_gpu_steps_as_torch_fused_adam():
    torch.manual_seed(0)
    ours, torchs = ActorCritic(4, 2, 32).to(CUDA), ActorCritic(4, 2, 32).to(CUDA)
    torchs.load_state_dict(ours.state_dict())
    before = ours.actor[0].weight.detach().clone()
    train_steps(ours, Adam(ours.parameters(), lr=1e-2), 25, seed=1, device=CUDA)
    train_steps(torchs, torch.optim.Adam(torchs.parameters(), lr=1e-2, fused=True), 25, seed=1, device=CUDA)
    assert_same_parameters(ours, torchs)
    assert not torch.equal(ours.actor[0].weight, before)


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
def test_both_agents_train_on_the_gpu_and_save_checkpoints_a_cpu_can_read(script, runs_dir):
    """CleanRL's preset on a Box task (observation and reward normalization on): the run says it
    used the GPU, its checkpoint holds CPU tensors only (torch.load needs no map_location on a
    machine without one), and it replays on the CPU."""
    run_dir, _ = short_run(
        script, runs_dir, "--device", "cuda", "--preset", "cleanrl", "--env-id", "Pendulum-v1",
        "--num-steps", "64", "--mini-batch-size", "32",
    )  # fmt: skip
    (events,) = run_dir.glob("events.out.tfevents.*")
    assert b"|device|cuda" in events.read_bytes()  # the hyperparameters table in TensorBoard's text tab
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(run_dir / name, weights_only=True)
        devices = {t.device.type for t in tensors_in(ckpt)}
        assert devices == {"cpu"}, name
    replay = run_script(script, "--eval-only", str(run_dir / "best.pt"), "--device", "cpu", "--eval-episodes", "2")
    assert replay.returncode == 0, replay.stderr
    assert "return" in replay.stdout


def tensors_in(obj):
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, dict):
        for value in obj.values():
            yield from tensors_in(value)
    elif isinstance(obj, list | tuple):
        for value in obj:
            yield from tensors_in(value)


def test_a_resumed_run_on_the_gpu_continues_the_same_curve(runs_dir):
    whole, _ = short_run("Spiking_PPO.py", runs_dir / "whole", "--device", "cuda", "--max-steps", "512")
    first, _ = short_run("Spiking_PPO.py", runs_dir / "split", "--device", "cuda", "--max-steps", "256")
    resumed = run_script("Spiking_PPO.py", "--resume", str(first), "--max-steps", "512")
    assert resumed.returncode == 0, resumed.stderr
    tag = "Spiking-PPO-CartPole-v0/Reward"
    assert [s for s, _ in scalars(first)[tag]] == [64 * i for i in range(1, 9)]
    assert scalars(first)[tag] == scalars(whole)[tag]


@pytest.mark.parametrize("there, back", [("cuda", "cpu"), ("cpu", "cuda")])
def test_a_run_resumes_on_the_other_device(there, back, runs_dir):
    """--device may change on resume: training goes on (from the same weights and optimizer state,
    with the other device's random stream)."""
    first, _ = short_run("Spiking_PPO.py", runs_dir, "--device", there, "--max-steps", "256")
    resumed = run_script("Spiking_PPO.py", "--resume", str(first), "--max-steps", "512", "--device", back)
    assert resumed.returncode == 0, resumed.stderr
    assert [s for s, _ in scalars(first)["Spiking-PPO-CartPole-v0/Reward"]] == [64 * i for i in range(1, 9)]
