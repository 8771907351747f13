"""What each agent's action noise costs it: the final checkpoints of finished runs, replayed with the
sampled policy (as training's evaluations play it) and with the policy's mean action.

    python bench/mean_action.py RUN_DIR [RUN_DIR ...] --json bench/results-mean-action.json

Each run directory's last.pt is replayed twice by its own script, `--eval-only last.pt --report`
and the same with `--mean-action`, on the same --episodes episodes (the same env resets; only the
action noise differs). Runs already in the JSON are not replayed again: a second call adds the
new ones, and the table covers every run the JSON holds. The table groups the runs by agent and
env, and by the arguments that tell that agent's runs apart (the seed aside): mean ± sample std
over seeds of both returns, and of the policy's spread, exp(log_std) averaged over the action's
dimensions.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from functools import partial
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from replays import last_checkpoint, report  # noqa: E402
from reproduce import add_record  # noqa: E402

import compare  # noqa: E402
from machinery import stats  # noqa: E402
from machinery.cli import OneLineParser, UsageError, check_positive, error, make_folder_for  # noqa: E402
from Spiking_PPO import SpikingArgs  # noqa: E402


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, help="run directories, each with a last.pt")
    parser.add_argument("--episodes", type=int, default=10, help="episodes per replay")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results-mean-action.json"), help="where to write")
    args = parser.parse_args(argv)
    args.run_dirs = list(dict.fromkeys(args.run_dirs))  # a run named twice (overlapping globs) is replayed once
    for run_dir in args.run_dirs:
        if not (run_dir / "last.pt").is_file():
            parser.error(f"{run_dir}: no last.pt there (give the directories of finished runs)")
    check_positive(args, "episodes")
    make_folder_for("--json", args.json, keys=("runs",))  # each replay is recorded as it ends
    return args


def measure(run_dir: Path, episodes: int) -> dict:
    """The run's last.pt replayed twice on the same `episodes` episodes, sampled and with the mean action."""
    ckpt = last_checkpoint(run_dir)
    replay = partial(report, run_dir / "last.pt", ckpt["agent"], "--eval-episodes", str(episodes))
    return {
        "run_dir": str(run_dir),
        "episodes": episodes,
        "agent": ckpt["agent"],
        "env_id": ckpt["env_id"],
        "step": ckpt["step"],
        "args": ckpt["args"],
        "policy_std": float(ckpt["model"]["log_std"].exp().mean()),
        "sampled": replay()["return_mean"],
        "mean_action": replay("--mean-action")["return_mean"],
    }


NOT_CONFIGURATION = {"seed", "runs_dir"}  # runs of one configuration differ in these: which seed, where it was run


def groups(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs by agent and env, and within them by the values of the arguments in which that
    agent's runs differ (NOT_CONFIGURATION aside); a flag a run's version did not have counts as its default."""
    defaults = dataclasses.asdict(SpikingArgs())

    def arg(run: dict, name: str):
        return run["args"].get(name, defaults.get(name))

    grouped: dict[str, list[dict]] = {}
    for agent in dict.fromkeys((r["agent"], r["env_id"]) for r in runs):
        own = [r for r in runs if (r["agent"], r["env_id"]) == agent]
        keys = sorted({k for r in own for k in r["args"]} - NOT_CONFIGURATION)
        differing = [k for k in keys if len({json.dumps(arg(r, k)) for r in own}) > 1]
        for r in own:
            label = ", ".join([*agent, *(f"{k}={arg(r, k)}" for k in differing)])
            grouped.setdefault(label, []).append(r)
    compare.one_run_per_seed(grouped, lambda run: arg(run, "seed"), "drop all but one from the JSON")
    return grouped


def table(runs: list[dict]) -> str:
    lines = [
        "| runs | seeds | sampled (as training evaluates) | mean action | policy std |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, members in groups(runs).items():
        cells = [
            stats.mean_std([r[k] for r in members], fmt) for k, fmt in (("sampled", ".1f"), ("mean_action", ".1f"))
        ]
        cells.append(stats.mean_std([r["policy_std"] for r in members], ".3f"))
        lines.append(f"| {label} | {len(members)} | {' | '.join(cells)} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
        path = Path(args.json)
        done = {r["run_dir"] for r in json.loads(path.read_text())["runs"]} if path.exists() else set()
        for run_dir in (d for d in args.run_dirs if str(d) not in done):
            record = measure(run_dir, args.episodes)
            add_record(path, record)  # each replay kept as it finishes, the file replaced whole
            print(f"{run_dir}: {record['sampled']:.1f} sampled, {record['mean_action']:.1f} mean", file=sys.stderr)
        summary = table(json.loads(path.read_text())["runs"])
    except UsageError as e:
        return error(e)
    print(summary)
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
