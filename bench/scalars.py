"""One TensorBoard scalar of finished runs, summarized over a window of rollout steps: the README's
figures of `losses/approx_kl`, `losses/epochs` and `losses/entropy` come from it.

    python bench/scalars.py RUN_DIR [RUN_DIR ...] --tag losses/approx_kl --from-step 250000 --to-step 750000

Per run: the median, min and max of the values logged in the window (both ends included), and over
the whole run the lowest value, the step it was logged at, and the last value.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from machinery.cli import OneLineParser, UsageError, error  # noqa: E402
from machinery.run import logged_scalars  # noqa: E402


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories, each with a TensorBoard log")
    parser.add_argument("--tag", required=True, help="the scalar, e.g. losses/approx_kl")
    parser.add_argument("--from-step", type=int, default=0, help="first rollout step of the window")
    parser.add_argument("--to-step", type=int, default=None, help="last rollout step of the window (default: the end)")
    return parser.parse_args(argv)


def read_scalar(run_dir: Path, tag: str) -> np.ndarray:
    """Rows (step, value) of `tag` in `run_dir`'s log, in the order they were logged."""
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir}: no such run directory")
    logged = logged_scalars(run_dir)
    if not logged:  # the runs' parent directory, say: TensorBoard reads the events of one directory
        raise UsageError(f"{run_dir}: no scalars logged there; give a run's own directory (<env-id>__<script>__...)")
    if tag not in logged:
        raise UsageError(f"{run_dir}: no scalar {tag!r} in its log, whose scalars are {', '.join(sorted(logged))}")
    return logged[tag]


def summary(rows: np.ndarray, from_step: int, to_step: int | None) -> dict[str, float]:
    steps, values = rows[:, 0], rows[:, 1]
    inside = (steps >= from_step) & (steps <= (np.inf if to_step is None else to_step))
    if not inside.any():
        to = "the end" if to_step is None else f"step {to_step}"
        raise UsageError(f"no value logged from step {from_step} to {to}; widen the window")
    window = values[inside]
    lowest = int(np.argmin(values))
    return {
        "median": float(np.median(window)), "min": float(window.min()), "max": float(window.max()),
        "lowest": float(values[lowest]), "lowest_at": float(steps[lowest]), "last": float(values[-1]),
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
        rows = [
            (run_dir, summary(read_scalar(run_dir, args.tag), args.from_step, args.to_step))
            for run_dir in args.run_dirs
        ]
    except UsageError as e:
        return error(e)
    window = f"steps {args.from_step} to {'the end' if args.to_step is None else args.to_step}"
    print(f"| run | {args.tag}: median, {window} | min | max | lowest in the run (step) | last |")
    print("|---|---:|---:|---:|---:|---:|")
    for run_dir, s in rows:
        print(
            f"| {run_dir.name} | {s['median']:.3f} | {s['min']:.3f} | {s['max']:.3f} "
            f"| {s['lowest']:.3f} ({s['lowest_at']:.0f}) | {s['last']:.3f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
