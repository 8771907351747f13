"""What a run will take from the machine, checked before anything is allocated.

The range checks of `cli` accept any positive size; this module refuses the sizes the machine
cannot honour: a run whose rollout, network temporaries, environments and evaluation would not
fit in the memory available now, more torch threads than the cores the process may use, and
--compile without the C++ compiler it needs. The memory estimate is deliberately rough
(within a small factor): it is there to turn a MemoryError an hour into a run into a one-line
refusal that names the flags. It knows sizes, not what they mean.
"""

from __future__ import annotations

import os
import shutil
import sys

from machinery.cli import UsageError

# Measured here (process RSS growth over 100 envs; a worker's Private_Dirty in smaps_rollup): an env
# made in this process takes 4 kB (CartPole-v1) to 1.07 MB (Hopper-v5); an async env's worker,
# forked from the trainer, shares most of its pages and holds 5 to 8 MB of its own.
ENV_BYTES = {"sync": 1 << 20, "async": 16 << 20}
FLOAT = 4


def available_memory() -> int | None:
    """Bytes the process can still allocate without swapping, or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            info = dict(line.split(":", 1) for line in f)
        return int(info["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def check_cores(count: int, flag: str) -> None:
    """A UsageError if `count` (torch threads, runs at once) is more than the cores this process may
    use: they would take turns on the cores, each slower, and report seconds that are not a core's."""
    if count > (cores := usable_cores()):
        raise UsageError(f"{flag} {count} is more than the {cores} cores this process may use")


def estimate_bytes(args, obs_dim: int, num_actions: int) -> dict[str, int]:
    """The largest allocations of a run, by what causes them (keys name the flags)."""
    T = getattr(args, "T", 1)  # the spiking network keeps [T, batch, hidden] tensors for its gradient
    layers, hidden = args.hidden_layers, 2 * args.hidden_size  # both branches
    batch = args.num_envs * args.num_steps
    per_sample = obs_dim + 2 * num_actions + 5  # states, actions, log_probs, values, rewards, masks, returns
    activations = hidden * layers * T * FLOAT  # bytes per sample, every hidden layer's
    weights = hidden * (obs_dim + num_actions + 2 + (layers - 1) * args.hidden_size) * FLOAT  # and biases, roughly
    temporaries = 6 * args.mini_batch_size * activations  # forward and backward of a mini-batch
    return {
        "--num-envs x --num-steps (the rollout)": 3 * batch * per_sample * FLOAT,  # and its shuffled copy
        "--mini-batch-size x --hidden-size x --hidden-layers x --T (temporaries)": temporaries,
        "--num-envs x --hidden-size x --hidden-layers x --T (acting)": 4 * args.num_envs * activations,
        "--hidden-size x --hidden-layers (weights, gradients, Adam)": 4 * weights,
        "--num-envs (training envs)": args.num_envs * ENV_BYTES[args.vectorization],
        "--eval-episodes (evaluation envs and batch)": args.eval_episodes
        * (ENV_BYTES[args.vectorization] + 4 * activations),
    }


def cpp_compiler() -> str:
    """The C++ compiler torch.compile's CPU code generator calls: $CXX, else its platform default."""
    return os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")


def check_machine_can_run(args, obs_dim: int, num_actions: int) -> None:
    """A UsageError if the run cannot fit in memory, asks for more threads than there are cores, or
    asks for --compile where there is no C++ compiler (torch would fail at the first update)."""
    check_cores(args.threads, "--threads")
    if args.compile and shutil.which(cpp_compiler()) is None:
        raise UsageError(
            f"--compile needs a C++ compiler and there is no {cpp_compiler()} on PATH: install one "
            "(or name it in $CXX), or leave --compile out"
        )
    available = available_memory()
    if available is None:
        return
    parts = estimate_bytes(args, obs_dim, num_actions)
    need = sum(parts.values())
    if need > 0.8 * available:
        largest = [part for part in sorted(parts, key=parts.get, reverse=True) if parts[part] > need / 10]
        raise UsageError(
            f"this run would need about {need / 2**30:.1f} GiB, more than 80% of the {available / 2**30:.1f} GiB "
            "available; "
            f"the most goes to {' and '.join(largest)}: lower them"
        )
