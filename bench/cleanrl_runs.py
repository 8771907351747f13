"""CleanRL's own ppo_continuous_action.py trained here, at its defaults and budget (1M environment
steps), on the -v5 MuJoCo tasks our agents run: what CleanRL's code itself returns on this stack,
beside its published -v4 numbers and our agents (README, "Results").

CleanRL publishes MuJoCo returns for the -v4 tasks, which gymnasium 1.x with MuJoCo 4 does not
have. Where our ANN misses CleanRL's published band, these runs tell whether CleanRL's own code
misses it too on the same task. Each run is CleanRL's script, unchanged (bench/cleanrl_scripts.py),
on one thread, --workers at a time; it writes its TensorBoard log to `<--runs-dir>/<env-id>__
ppo_continuous_action__<seed>__<unix-time>/` as CleanRL names it, which bench/episodic_return.py
reduces as CleanRL's published numbers are. (CleanRL's ppo.py, for the Discrete tasks, is written
for gymnasium 0.29: under 1.x its vector env resets a step later and it logs no episodes.)

    python bench/cleanrl_runs.py --cleanrl-dir ~/cleanrl --tasks Hopper-v5 HalfCheetah-v5 --seeds 3
    python bench/episodic_return.py bench/runs-cleanrl/Hopper-v5__*
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import cleanrl_scripts  # noqa: E402

from machinery import resources  # noqa: E402
from machinery.cli import OneLineParser, UsageError, check_positive, error, make_folder  # noqa: E402
from machinery.run import side_by_side  # noqa: E402

TASKS = ("Hopper-v5", "HalfCheetah-v5")


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cleanrl-dir", type=Path, required=True, help="the root of a CleanRL clone")
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS), help="tasks to train on")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per task (1, 2, ..., K)")
    parser.add_argument("--from-seed", type=int, default=1, help="train seeds from this one to --seeds")
    parser.add_argument("--workers", type=int, default=min(2, resources.usable_cores()), help="training runs at once")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "bench" / "runs-cleanrl", help="the runs' directories")
    args = parser.parse_args(argv)
    args.tasks = list(dict.fromkeys(args.tasks))  # a task named twice is trained once
    check_positive(args, "seeds", "workers")
    resources.check_cores(args.workers, "--workers")  # each run's seconds are recorded
    if not 1 <= args.from_seed <= args.seeds:
        parser.error(f"--from-seed must be in 1..--seeds ({args.seeds}), got {args.from_seed}")
    cleanrl_scripts.check_checkout(args.cleanrl_dir, args.tasks)
    make_folder(args.runs_dir, f"--runs-dir {args.runs_dir}")
    return args


def train(args: argparse.Namespace, task: str, seed: int) -> str:
    """One run of CleanRL's script; a line saying how it went."""
    with tempfile.TemporaryDirectory() as cwd:  # the script writes runs/<name> where it runs
        (Path(cwd) / "runs").symlink_to(args.runs_dir.resolve(), target_is_directory=True)
        command = cleanrl_scripts.command(args.cleanrl_dir, task, "--seed", str(seed), "--no-cuda")
        start = time.monotonic()
        result = subprocess.run(
            command, capture_output=True, text=True, cwd=cwd, env={**os.environ, "OMP_NUM_THREADS": "1"}
        )
    if result.returncode != 0:
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        return f"failed: {task} seed {seed}: {last_line}"
    return f"{task} seed {seed}: {time.monotonic() - start:.0f} s"


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
    except UsageError as e:
        return error(e)
    jobs = [(task, seed) for task in args.tasks for seed in range(args.from_seed, args.seeds + 1)]
    failed = 0
    try:
        for line in side_by_side(lambda job: train(args, *job), jobs, args.workers):
            print(line, file=sys.stderr, flush=True)
            failed += line.startswith("failed")
    except KeyboardInterrupt:
        print(f"stopped by SIGINT; the runs that finished are in {args.runs_dir}", file=sys.stderr)
        return 128 + signal.SIGINT
    print(f"runs in {args.runs_dir}: reduce them with bench/episodic_return.py")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
