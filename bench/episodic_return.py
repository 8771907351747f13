"""CleanRL's published measure of finished runs: each run's mean return over its last 100 training
episodes (`charts/episodic_return`), then the mean ± std of those over the runs.

That is how openrlbenchmark's `rlops`, which made the tables CleanRL publishes, reduces its runs
(`metric_last_n_average_window` 100; numpy's std, over the seeds, without Bessel's correction). The
README's results tables measure evaluations instead; this sets training episodes beside CleanRL's
numbers like for like.

    python bench/episodic_return.py runs/Hopper-v5__PPO__*
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from scalars import read_scalar  # noqa: E402

from machinery.cli import OneLineParser, UsageError, check_positive, error  # noqa: E402

TAG = "charts/episodic_return"


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories, each with a TensorBoard log")
    parser.add_argument(
        "--last", type=int, default=100, help="training episodes averaged per run, as rlops averages CleanRL's"
    )
    args = parser.parse_args(argv)
    args.run_dirs = list(dict.fromkeys(args.run_dirs))  # a run named twice (overlapping globs) counts once
    check_positive(args, "last")
    return args


def last_episodes_mean(run_dir: Path, last: int) -> tuple[float, int]:
    """The mean return of the run's last `last` training episodes, and how many there were."""
    returns = read_scalar(run_dir, TAG)[-last:, 1]
    return float(returns.mean()), len(returns)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
        rows = [(run_dir, *last_episodes_mean(run_dir, args.last)) for run_dir in args.run_dirs]
    except UsageError as e:
        return error(e)
    print(f"| run | mean return of its last {args.last} training episodes |")
    print("|---|---:|")
    for run_dir, mean, count in rows:
        print(f"| {run_dir.name} | {mean:.2f}{'' if count == args.last else f' (only {count} episodes)'} |")
    means = np.array([mean for _, mean, _ in rows])
    print(f"\nOver the {len(means)} runs: {means.mean():.2f} ± {means.std():.2f} (mean ± std, numpy's, ddof 0)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
