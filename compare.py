"""Compare the spiking agent with its ANN twin over several seeds.

Runs both scripts over K seeds (in parallel, up to the number of cores) or reads runs already in a
runs directory, then draws the evaluation-return curves of each agent (mean over seeds with a
shaded 95% bootstrap interval) against rollout steps and against wall time, and writes a table per
agent: final mean return, rollout steps and seconds to reach the target return, and seconds per
1e4 rollout steps.

    python compare.py --seeds 5 --max-steps 30000      # train 5 seeds of each agent, then compare
    python compare.py --read-only --runs-dir runs       # compare the runs that are there
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from machinery.cli import OneLineParser, UsageError

ROOT = Path(__file__).resolve().parent
AGENTS = {"Spiking-PPO": "Spiking_PPO", "PPO": "PPO"}  # TensorBoard name -> script


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default="runs", help="where runs are written and read")
    parser.add_argument("--env-id", default="CartPole-v0", help="env to train on and compare")
    parser.add_argument("--seeds", type=int, default=5, help="seeds per agent (1, 2, ..., K)")
    parser.add_argument("--max-steps", type=int, default=100_000, help="rollout steps per run")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="training runs at once")
    parser.add_argument("--read-only", action="store_true", help="train nothing; compare the runs in --runs-dir")
    parser.add_argument("--target", type=float, default=195.0, help="return that counts as solved")
    parser.add_argument("--out", default="comparison", help="output prefix: <out>-steps.svg/png, -time, .md")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% interval")
    args = parser.parse_args(argv)
    for name in ("seeds", "max_steps", "workers", "bootstrap"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    return args


def train_runs(args: argparse.Namespace) -> None:
    commands = [
        [sys.executable, str(ROOT / f"{script}.py"), "--env-id", args.env_id, "--seed", str(seed)]
        + ["--max-steps", str(args.max_steps), "--runs-dir", args.runs_dir, "--quiet"]
        for script in AGENTS.values()
        for seed in range(1, args.seeds + 1)
    ]
    # torch would start one thread per core in every run; the runs are the parallelism here.
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(lambda c: subprocess.run(c, capture_output=True, text=True, env=env), commands))
    for command, result in zip(commands, results, strict=True):
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            raise UsageError(f"{Path(command[1]).name} --seed {command[5]} failed: {last}")


def read_curves(runs_dir: Path, env_id: str) -> dict[str, list[np.ndarray]]:
    """agent -> one array per run, rows (rollout step, training seconds so far, eval return)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves: dict[str, list[np.ndarray]] = {name: [] for name in AGENTS}
    for run_dir in sorted(runs_dir.rglob(f"{env_id}__*")):  # sweeps nest runs in trial directories
        for name, script in AGENTS.items():
            if not run_dir.name.startswith(f"{env_id}__{script}__"):
                continue
            acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
            acc.Reload()
            tag = f"{name}-{env_id}/Reward"
            if not {tag, "charts/elapsed_seconds"} <= set(acc.Tags()["scalars"]):
                continue
            seconds = {e.step: e.value for e in acc.Scalars("charts/elapsed_seconds")}
            curves[name].append(np.array([(e.step, seconds[e.step], e.value) for e in acc.Scalars(tag)]))
    if not any(curves.values()):
        raise UsageError(f"no {env_id} runs with an eval-return curve in {runs_dir}; train some, or drop --read-only")
    return curves


def bootstrap_interval(samples: np.ndarray, resamples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """95% bootstrap interval of the mean over axis 0 (the seeds), for every column."""
    picks = rng.integers(0, len(samples), size=(resamples, len(samples)))
    means = samples[picks].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def common_grid(runs: list[np.ndarray], column: int, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The runs' returns interpolated on one grid of `column` (0: steps, 1: seconds) they all cover."""
    end = min(run[-1, column] for run in runs)
    grid = np.linspace(max(run[0, column] for run in runs), end, points)
    return grid, np.stack([np.interp(grid, run[:, column], run[:, 2]) for run in runs])


def plot(curves: dict[str, list[np.ndarray]], column: int, args: argparse.Namespace, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rng = np.random.default_rng(0)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for name, runs in curves.items():
        if not runs:
            continue
        grid, returns = common_grid(runs, column)
        low, high = bootstrap_interval(returns, args.bootstrap, rng)
        ax.plot(grid, returns.mean(axis=0), label=f"{name} ({len(runs)} seeds)")
        ax.fill_between(grid, low, high, alpha=0.25)
    ax.axhline(args.target, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel(["rollout steps", "wall time (s)"][column])
    ax.set_ylabel("mean eval return")
    ax.set_title(f"{args.env_id}: mean over seeds, shaded 95% bootstrap interval")
    ax.legend(loc="lower right")
    fig.tight_layout()
    for suffix in ("svg", "png"):
        fig.savefig(f"{path}.{suffix}", dpi=120)
    plt.close(fig)


def first_reaching(run: np.ndarray, target: float) -> tuple[float, float]:
    hits = np.flatnonzero(run[:, 2] >= target)
    return (run[hits[0], 0], run[hits[0], 1]) if len(hits) else (np.nan, np.nan)


def summary_table(curves: dict[str, list[np.ndarray]], target: float) -> str:
    def cell(values: list[float], fmt: str) -> str:
        reached = [v for v in values if np.isfinite(v)]
        if not reached:
            return "not reached"
        note = "" if len(reached) == len(values) else f" ({len(reached)}/{len(values)} seeds)"
        return f"{np.mean(reached):{fmt}} ± {np.std(reached):{fmt}}{note}"

    lines = [
        f"| agent | seeds | final eval return | rollout steps to {target:g} | seconds to {target:g} "
        "| seconds per 1e4 steps |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in curves.items():
        if not runs:
            continue
        hits = [first_reaching(run, target) for run in runs]
        per_1e4 = [run[-1, 1] / run[-1, 0] * 1e4 for run in runs]
        lines.append(
            f"| {name} | {len(runs)} | {cell([run[-1, 2] for run in runs], '.1f')} "
            f"| {cell([h[0] for h in hits], '.0f')} | {cell([h[1] for h in hits], '.1f')} | {cell(per_1e4, '.1f')} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        if not args.read_only:
            train_runs(args)
        curves = read_curves(Path(args.runs_dir), args.env_id)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    plot(curves, 0, args, f"{args.out}-steps")
    plot(curves, 1, args, f"{args.out}-time")
    table = summary_table(curves, args.target)
    Path(f"{args.out}.md").write_text(table)
    print(table)
    print(f"written: {args.out}-steps.svg/.png, {args.out}-time.svg/.png, {args.out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
