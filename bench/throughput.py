"""Throughput at CleanRL's own settings: environment steps per second of both agents' training loop,
and, given a CleanRL checkout, of CleanRL's own scripts beside them on the same machine.

Runs `PPO.py` and `Spiking_PPO.py`, each as it is and with `--compile` ("PPO-compile",
"Spiking-PPO-compile"), with `--preset cleanrl` on CartPole-v1 and HalfCheetah-v5 for a fixed number
of environment steps, with no evaluation (CleanRL's loop has none), one run at a time, and reports
the loop's own count of seconds (start-up left out, as CleanRL's SPS leaves it out), the median of
--runs runs. With --cleanrl-dir, CleanRL's `ppo.py` (CartPole-v1) and `ppo_continuous_action.py`
(HalfCheetah-v5) run for the same steps, in turn with the agents, at their defaults (torch's own
thread count) and on one thread as our scripts run; their last printed SPS is their figure, and the
ratios are to the faster of the two. Without it, the ratios are to the figures issue #13 gives for
this machine class (ISSUE_CLEANRL_SPS). `--compile` compiles at start-up, so its compilation is left
out too; the JSON keeps each of our runs' wall time, start-up included (`wall_seconds_all`).

It also times the work that sets the spiking agent's update apart at these settings: the matrix
products of its hidden layers after the first, which see spikes that change over the T steps, against
the ANN's same products on its mini-batch's rows (`deeper_products_seconds`), and its IF neurons
stepped through the T steps against the ANN's tanh (`neurons_seconds`). With the compiled ANN and
CleanRL measured, a second table bounds the spiking agent's speed by the compiled ANN's loop plus
that work's excess.

    python bench/throughput.py                  # 100k environment steps per run, 3 runs per agent
    python bench/throughput.py --cleanrl-dir ~/cleanrl   # with CleanRL's scripts (a clone; pip install tyro)
    python bench/throughput.py --device cuda --json throughput-cuda.json   # the networks on a GPU
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import timeit
import types
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cleanrl_scripts  # noqa: E402
from benchmark import time_training  # noqa: E402
from reproduce import num_envs, resolved_args  # noqa: E402

from machinery import fast_if, files  # noqa: E402
from machinery.cli import OneLineParser, UsageError, check_positive, error, make_folder_for  # noqa: E402

# CleanRL's scripts at their defaults on this machine class, as measured for issue #13 (SPS, the
# environment steps per second its loop prints): ppo.py on CartPole-v1 ran 100k steps in 14 s, about
# 9,000 steps/s in its loop; ppo_continuous_action.py on HalfCheetah about 2,100 steps/s.
ISSUE_CLEANRL_SPS = {"CartPole-v1": 9_000, "HalfCheetah-v5": 2_100}
AGENTS = {
    "PPO": ("PPO.py", []),
    "PPO-compile": ("PPO.py", ["--compile"]),
    "Spiking-PPO": ("Spiking_PPO.py", []),
    "Spiking-PPO-compile": ("Spiking_PPO.py", ["--compile"]),
}
COLUMNS = {
    "PPO": "PPO (ANN)",
    "PPO-compile": "PPO (ANN), --compile",
    "Spiking-PPO": "Spiking PPO",
    "Spiking-PPO-compile": "Spiking PPO, --compile",
}
CLEANRL_RUNS = {"CleanRL": False, "CleanRL, 1 thread": True}  # name: on one thread (OMP_NUM_THREADS=1)


def cleanrl_sps(checkout: Path, task: str, env_steps: int, one_thread: bool, cwd: str) -> int:
    """The SPS CleanRL's own script prints last (its global step over the seconds since its first reset)."""
    command = cleanrl_scripts.command(checkout, task, "--total-timesteps", str(env_steps), "--no-cuda")
    env = {**os.environ, **({"OMP_NUM_THREADS": "1"} if one_thread else {})}
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd, env=env)
    sps = re.findall(r"^SPS: (\d+)$", result.stdout, re.MULTILINE)
    if result.returncode != 0 or not sps:
        raise RuntimeError(f"{cleanrl_scripts.SCRIPTS[task]} failed: {result.stderr.strip()[-500:]}")
    return int(sps[-1])


def seconds_for(name: str, task: str, args: argparse.Namespace, runs_dir: str) -> tuple[float, float | None]:
    """Seconds that one run of `name` (an agent, or CleanRL's script) takes for --env-steps
    environment steps of `task`: its training loop alone, and, for our agents, the whole process
    (start-up included: imports, envs, and with --compile the compilation)."""
    if name in CLEANRL_RUNS:
        sps = cleanrl_sps(args.cleanrl_dir, task, args.env_steps, CLEANRL_RUNS[name], runs_dir)
        return args.env_steps / sps, None
    preset = ["--preset", "cleanrl"]
    envs_at_once = num_envs(task, preset)
    steps = args.env_steps // envs_at_once
    script, extra = AGENTS[name]
    flags = [*preset, *extra, "--env-id", task, "--eval-interval", str(10 * steps), "--cost-interval", "0"]
    done, wall, loop = time_training(script, flags, steps, runs_dir, 1, args.device)
    return loop * args.env_steps / (done * envs_at_once), wall


def deeper_products_seconds(task: str) -> dict[str, float]:
    """Seconds per environment step that each agent's update spends in the matrix products of its
    hidden layers after the first at --preset cleanrl (one layer of 64 in each branch, T = 16), forward
    and backward: each mini-batch runs the product and the three of its backward pass (to its input,
    the weights and the bias), the ANN on the mini-batch's rows, the spiking agent on the spikes of T
    steps. Timed as the kernels and ops the fast path runs, both branches in one batched product,
    called directly: without autograd's bookkeeping around them, which the compiled mini-batch step
    does not pay in full, so the excess is not overstated. On one thread, the best of 20 repetitions,
    counted for every mini-batch of every epoch of an update. The spiking agent's second layer sees the
    first one's periodic spikes (`fast_if.PeriodicLinear`'s kernels), here those of IF neurons under
    standard normal currents; a third and more would see changing spikes, dense."""
    args = resolved_args(task, ["--preset", "cleanrl"])
    rows, size, g = args.mini_batch_size, args.hidden_size, torch.Generator().manual_seed(0)
    weight, bias = torch.randn(2, size, size, generator=g), torch.randn(2, size, generator=g)
    first_layer = fast_if.if_spikes(torch.randn(2, 1, rows, size, generator=g), args.T, 1.0, 4.0, False)
    grad = torch.ones_like(first_layer)

    def dense(x, grad):  # what autograd runs for baddbmm
        torch.baddbmm(bias.unsqueeze(1), x, weight)
        torch.bmm(grad, weight.transpose(1, 2))
        torch.bmm(x.transpose(1, 2), grad)
        grad.sum(1)

    def periodic(spikes, grad):  # PeriodicLinear's own forward and backward, without autograd around them
        _, periods = fast_if.PeriodicLinear.forward(spikes, weight, bias)
        fast_if.PeriodicLinear.backward(types.SimpleNamespace(saved_tensors=(periods, weight)), grad, None)

    deeper, rows_in = args.hidden_layers - 1, torch.randn(2, rows, size, generator=g)
    seconds = {"PPO": deeper * best_seconds(dense, rows_in, torch.ones_like(rows_in))}
    seconds["Spiking-PPO"] = best_seconds(periodic, first_layer, grad)
    if deeper > 1:  # a third layer and more
        seconds["Spiking-PPO"] += (deeper - 1) * best_seconds(dense, first_layer.flatten(1, 2), grad.flatten(1, 2))
    return per_env_step(seconds, args)


def neurons_seconds(task: str) -> dict[str, float]:
    """Seconds per environment step that each agent's update spends in its hidden layers' neurons at
    --preset cleanrl, forward and backward, timed and counted as `deeper_products_seconds` times and
    counts the products: the ANN's tanh on the mini-batch's rows; the spiking agent's IF neurons
    stepped through T steps (`fast_if.IFSpikes`'s kernels; its backward also computes the surrogate's
    sigmoid), the first layer's under one current per sample, the others' under one per step, here
    standard normal currents."""
    args = resolved_args(task, ["--preset", "cleanrl"])
    rows, size, g = args.mini_batch_size, args.hidden_size, torch.Generator().manual_seed(0)
    grad = torch.ones(2, args.T, rows, size)

    def tanh(x, grad):  # what autograd runs for tanh
        torch.ops.aten.tanh_backward(grad, torch.tanh(x))

    def if_neurons(x, grad):
        _, u_seq = fast_if.if_steps_forward(x, args.T, 1.0, 4.0, False)
        fast_if.if_steps_backward(grad, u_seq, 1.0, 4.0, summed=x.shape[1] == 1, soft_reset=False)

    rows_in = torch.randn(2, rows, size, generator=g)
    seconds = {"PPO": args.hidden_layers * best_seconds(tanh, rows_in, torch.ones_like(rows_in))}
    seconds["Spiking-PPO"] = best_seconds(if_neurons, torch.randn(2, 1, rows, size, generator=g), grad)
    seconds["Spiking-PPO"] += (args.hidden_layers - 1) * best_seconds(
        if_neurons, torch.randn(2, args.T, rows, size, generator=g), grad
    )
    return per_env_step(seconds, args)


def best_seconds(work, *inputs) -> float:
    """The best of 20 repetitions of `work` on `inputs`, in seconds a call."""
    return min(timeit.repeat(lambda: work(*inputs), number=10, repeat=20)) / 10


def per_env_step(seconds: dict[str, float], args: argparse.Namespace) -> dict[str, float]:
    """Seconds a mini-batch, counted for every mini-batch of every epoch of an update, per env step."""
    batch = args.num_steps * args.num_envs
    mini_batches = batch // args.mini_batch_size * args.ppo_epochs
    return {name: s * mini_batches / batch for name, s in seconds.items()}


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-steps", type=int, default=100_000, help="environment steps per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per agent and task (the median is reported)")
    parser.add_argument(
        "--tasks", nargs="+", choices=list(ISSUE_CLEANRL_SPS), default=list(ISSUE_CLEANRL_SPS), help="tasks to time"
    )
    parser.add_argument("--agents", nargs="+", choices=list(AGENTS), default=list(AGENTS), help="agents to time")
    parser.add_argument(
        "--device", default="cpu", choices=("cpu", "cuda", "auto"), help="the scripts' --device (envs run on the CPU)"
    )
    parser.add_argument("--cleanrl-dir", type=Path, help="a CleanRL checkout: time its scripts too, side by side")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results-throughput.json"), help="where to write")
    args = parser.parse_args(argv)
    check_positive(args, "env_steps", "runs")
    for task in args.tasks:
        if args.env_steps < (envs_at_once := num_envs(task, ["--preset", "cleanrl"])):
            raise UsageError(f"--env-steps {args.env_steps}: less than one step of {task}'s {envs_at_once} envs")
    if args.cleanrl_dir is not None:
        cleanrl_scripts.check_checkout(args.cleanrl_dir, args.tasks)
    make_folder_for("--json", args.json)  # it is written after each task
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
    except UsageError as e:
        return error(e)
    results = {"env_steps": args.env_steps, "device": args.device, "issue_cleanrl_sps": ISSUE_CLEANRL_SPS}
    results |= {"cleanrl_dir": None if args.cleanrl_dir is None else str(args.cleanrl_dir), "runs": {}}
    names = [*args.agents, *(CLEANRL_RUNS if args.cleanrl_dir is not None else ())]
    torch.set_num_threads(1)
    for key, work in (("deeper_products", deeper_products_seconds), ("neurons", neurons_seconds)):
        results[f"{key}_us_per_env_step"] = {
            task: {name: s * 1e6 for name, s in work(task).items()} for task in args.tasks
        }
    with tempfile.TemporaryDirectory() as runs_dir:
        for task in args.tasks:
            seconds, walls = {name: [] for name in names}, {name: [] for name in names}
            for _ in range(args.runs):  # in turn, so that a slow spell of the machine hits them all alike
                for name in names:
                    loop, wall = seconds_for(name, task, args, runs_dir)
                    seconds[name].append(loop)
                    walls[name].append(wall)
                    print(f"{task} {name}: {args.env_steps} env steps in {loop:.1f} s", file=sys.stderr)
            for name, all_runs in seconds.items():
                sps = args.env_steps / statistics.median(all_runs)
                results["runs"][f"{task} {name}"] = {"seconds_all": all_runs, "env_steps_per_s": sps}
                if name in AGENTS:
                    results["runs"][f"{task} {name}"]["wall_seconds_all"] = walls[name]
            files.write_json(args.json, results)  # what is done survives a stop
    print(table(results, args.tasks))
    if bound := bound_table(results, args.tasks):
        print("\n" + bound)
    print(f"\nwritten: {args.json}")
    return 0


def table(results: dict, tasks: list[str]) -> str:
    """Environment steps per second of each agent, and its ratio to CleanRL's: measured here where
    CleanRL ran (the faster of its two thread settings), else the issue's figure."""
    runs, measured = results["runs"], results["cleanrl_dir"] is not None
    cleanrl_head = "CleanRL (its SPS here: default threads / 1 thread)" if measured else "CleanRL (issue #13's figure)"
    lines = [f"| task | {cleanrl_head} | {' | '.join(COLUMNS.values())} |", "|---|" + "---:|" * (1 + len(COLUMNS))]
    for task in tasks:
        sps = {name: runs.get(f"{task} {name}", {}).get("env_steps_per_s") for name in (*AGENTS, *CLEANRL_RUNS)}
        if measured:
            baseline = max(sps[name] for name in CLEANRL_RUNS)
            cleanrl = " / ".join(f"{sps[name]:,.0f}" for name in CLEANRL_RUNS)
        else:
            baseline = results["issue_cleanrl_sps"][task]
            cleanrl = f"{baseline:,}"
        cells = ["-" if sps[a] is None else f"{sps[a]:,.0f} ({sps[a] / baseline:.2f}x)" for a in AGENTS]
        lines.append(f"| {task} | {cleanrl} | {' | '.join(cells)} |")
    return "\n".join(lines)


def bound_table(results: dict, tasks: list[str]) -> str | None:
    """Microseconds per environment step: twice CleanRL's speed allows so many; the compiled ANN's loop
    took so many; the spiking agent's deeper layers' products add so many beyond the ANN's (which runs
    them on the mini-batch's rows once, where the spiking agent runs them on T steps' spikes), and its
    IF neurons so many beyond the ANN's tanh. So the spiking agent runs at most at the last column's
    ratio to CleanRL, unless the rest of its loop is faster than the compiled ANN's whole loop. None
    without CleanRL's and the compiled ANN's runs."""
    runs = results["runs"]
    if results["cleanrl_dir"] is None or not all(f"{task} PPO-compile" in runs for task in tasks):
        return None
    lines = [
        "| task | 2x CleanRL allows | PPO (ANN), --compile: its loop | Spiking PPO: products of layers 2+, "
        "beyond the ANN's | Spiking PPO: IF neurons, beyond the ANN's tanh | Spiking PPO at most (ratio to CleanRL) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for task in tasks:
        cleanrl_sps = max(runs[f"{task} {name}"]["env_steps_per_s"] for name in CLEANRL_RUNS)
        ann_us = 1e6 / runs[f"{task} PPO-compile"]["env_steps_per_s"]
        products_us, neurons_us = (results[f"{key}_us_per_env_step"][task] for key in ("deeper_products", "neurons"))
        products_beyond_us = products_us["Spiking-PPO"] - products_us["PPO"]
        neurons_beyond_us = neurons_us["Spiking-PPO"] - neurons_us["PPO"]
        most = 1e6 / (ann_us + products_beyond_us + neurons_beyond_us) / cleanrl_sps
        lines.append(
            f"| {task} | {0.5e6 / cleanrl_sps:.1f} us | {ann_us:.1f} us | {products_beyond_us:.1f} us "
            f"| {neurons_beyond_us:.1f} us | {most:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
