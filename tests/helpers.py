"""What several test modules share: running the scripts as a user does, reading what a run logged,
twin networks for the checks of the fast path and of our Adam, and the ways a network's parameters
change under a kernel that keeps arrays of them."""

import contextlib
import importlib
import io
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import Spiking_PPO
from machinery.speed import Adam
from Spiking_PPO import ActorCritic

ROOT = Path(__file__).resolve().parent.parent
# A run that evaluates, checkpoints and updates a few times, in seconds.
SHORT = ["--max-steps", "256", "--eval-interval", "64", "--eval-episodes", "3", "--ppo-epochs", "2", "--quiet"]
TOL = dict(atol=1e-5, rtol=1e-4)  # the fast path against the step-by-step network: float32 sums in another order


def flat_frozen_lake(**kwargs) -> gym.Env:
    """FrozenLake with its observation one-hot, a flat Box the agents take: an env whose state holds an
    array of bytes (its map), which torch has no tensor for. Registered as FLAT_FROZEN_LAKE."""
    return gym.wrappers.FlattenObservation(gym.make("FrozenLake-v1", **kwargs))


FLAT_FROZEN_LAKE = "FlatFrozenLake-v0"
gym.register(FLAT_FROZEN_LAKE, entry_point=flat_frozen_lake, max_episode_steps=100)
ENDLESS_PENDULUM = "EndlessPendulum-v0"  # Pendulum without its time limit: its episodes never end
gym.register(ENDLESS_PENDULUM, entry_point="gymnasium.envs.classic_control.pendulum:PendulumEnv")


def run_process(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run one of the training scripts as a user would: `python SCRIPT ARGS` from the repository root.
    For what only a whole process shows (its exit status, a traceback, signals, another process's lock)."""
    return subprocess.run(
        [sys.executable, str(ROOT / script), *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def run_script(script: str, *args: str) -> subprocess.CompletedProcess:
    """Run one of the training scripts' command lines in this process, from the repository root: what
    `python SCRIPT ARGS` would return and print, through the same `main`, without the 4 to 5 s a fresh
    interpreter spends importing torch (most of the suite's time when every run paid it)."""
    module = importlib.import_module(Path(script).stem)
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.chdir(ROOT), contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            status = module.main(module.AGENT, list(args))
        except SystemExit as e:  # argparse's --help
            status = e.code or 0
    return subprocess.CompletedProcess([script, *args], status, stdout.getvalue(), stderr.getvalue())


def short_run(script: str, runs_dir: Path, *extra: str) -> tuple[Path, subprocess.CompletedProcess]:
    """A SHORT run of `script` into the empty `runs_dir`; its run directory and the process."""
    result = run_script(script, *SHORT, "--runs-dir", str(runs_dir), *extra)
    assert result.returncode == 0, result.stderr
    (run_dir,) = runs_dir.iterdir()
    return run_dir, result


def scalars(run_dir: Path) -> dict[str, list[tuple[int, float]]]:
    """Every scalar a run logged to TensorBoard, as TensorBoard reads it: tag -> [(step, value)]."""
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def fast_and_reference(num_inputs, num_outputs, hidden, T, seed, hidden_layers=1, readout_tau=2.0, soft_reset=False):
    """The spiking network twice with the same weights: the fast path, and the step-by-step one."""
    torch.manual_seed(seed)
    layout = dict(T=T, hidden_layers=hidden_layers, readout_tau=readout_tau, soft_reset=soft_reset)
    fast, reference = (
        ActorCritic(num_inputs, num_outputs, hidden, impl=impl, **layout) for impl in ("fast", "reference")
    )
    reference.load_state_dict(fast.state_dict())
    with torch.no_grad():  # a non-trivial policy spread, so log_std gets a gradient of its own
        fast.log_std.normal_()
        reference.log_std.copy_(fast.log_std)
    return fast, reference


def loss_and_grads(model, x, action, target):
    """A PPO-like loss of every output (log-prob, value, entropy); the distribution, value and gradients."""
    dist, value = model(x)
    loss = -dist.log_prob(action).mean() + (value - target).pow(2).mean() - 0.01 * dist.entropy().mean()
    model.zero_grad()
    loss.backward()
    return dist, value, {n: p.grad.clone() for n, p in model.named_parameters()}


def train_steps(model, optimizer, steps, seed, device="cpu"):
    """Adam steps on a loss that leaves log_std out: a parameter without a gradient must stay put."""
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, target = torch.randn(64, 4, generator=g) * 2, torch.randn(64, 1, generator=g)
        x, target = x.to(device), target.to(device)
        dist, value = model(x)
        loss = (value - target).pow(2).mean() + dist.loc.pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def assert_same_parameters(a, b):
    for (name, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q), name


def change_parameters_every_way(model, other, args, check, rng: torch.Generator) -> None:
    """Call `check(net)` on `model` after each way its parameters change under a kernel that keeps
    arrays of them between calls (fast_if.ParameterViews): the optimizer's steps in place, a loaded
    state, parameters replaced (one of them not contiguous), that copy changed in place; and on
    `other`, a second network of the same shape, in between."""
    check(model)
    check(other)
    obs_dim, actions = model.critic[0].in_features, model.log_std.shape[1]
    batch = (torch.rand(8, n, generator=rng) for n in (obs_dim, actions, actions, 1, 1, 1))
    Spiking_PPO.ppo_loss(model, args, *batch)[0].backward()
    Adam(model.parameters(), lr=0.1).step()  # every parameter moved in place
    check(model)
    model.load_state_dict(other.state_dict())
    check(model)
    hidden = model.critic[0].out_features
    with torch.no_grad():
        model.actor[2].weight = torch.nn.Parameter(torch.randn(*model.actor[2].weight.shape, generator=rng))
        model.critic[0].weight = torch.nn.Parameter(torch.randn(obs_dim, hidden, generator=rng).t())  # not contiguous
        model.log_std = torch.nn.Parameter(torch.full((1, actions), -0.7))
    check(model)
    model.critic[0].weight.data.mul_(2)  # the copy of a parameter that is not contiguous is made again
    check(model)
    check(other)
    check(model)
