"""What a decision costs, SNN against ANN, over the seeds of a comparison: the README's cost table.

Replays the best.pt of every run of --env-id in --runs-dir (those compare.py trained, selected and
checked as `compare.py --read-only` does) with `--eval-only --report`, then tabulates per agent the
evaluation return and, per decision of the actor and of actor and critic together, spikes, SynOps,
MACs and energy, compute only and with memory traffic (machinery/cost.py says what each counts):
mean ± sample standard deviation over seeds. Writes the reports' figures as JSON.

    python compare.py --seeds 5 --max-steps 30000 --runs-dir runs/cost     # the runs (5 seeds each)
    python bench/cost_table.py --runs-dir runs/cost --json bench/cost.json    # the table
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import compare  # noqa: E402
from machinery import files, stats  # noqa: E402
from machinery.cli import OneLineParser, UsageError, make_folder_for  # noqa: E402

ROWS = [("actor", "actor"), ("actor_critic", "actor + critic")]


def reports(run_dirs: list[Path]) -> dict[str, list[dict]]:
    """agent -> the --report of each run's best.pt."""
    out: dict[str, list[dict]] = {name: [] for name in compare.AGENTS}
    with tempfile.TemporaryDirectory() as tmp:
        for i, run_dir in enumerate(run_dirs):
            name, path = compare.agent_of(run_dir), Path(tmp) / f"{i}.json"
            script = ROOT / f"{compare.AGENTS[name]}.py"
            command = [sys.executable, str(script), "--eval-only", str(run_dir / "best.pt"), "--report", str(path)]
            subprocess.run(command, check=True, capture_output=True)
            out[name].append(json.loads(path.read_text()))
    return out


def table(by_agent: dict[str, list[dict]]) -> str:
    lines = [
        "| agent | seeds | eval return | network | spikes | SynOps | MACs | energy, compute (nJ) "
        "| energy, with memory (nJ) |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for name, runs in by_agent.items():
        if not runs:
            continue
        returns = stats.mean_std([r["return_mean"] for r in runs])
        for part, label in ROWS:
            c = [r["cost"][part] for r in runs]
            lines.append(
                f"| {name} | {len(runs)} | {returns} | {label} | {stats.mean_std([x['spikes'] for x in c])} "
                f"| {stats.mean_std([x['synop'] for x in c], '.0f')} | {stats.mean_std([x['mac'] for x in c], '.0f')} "
                f"| {stats.mean_std([x['energy_pj'] / 1e3 for x in c], '.2f')} "
                f"| {stats.mean_std([x['energy_total_pj'] / 1e3 for x in c], '.1f')} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", required=True, help="the runs of both agents, as compare.py trained them")
    parser.add_argument("--env-id", default="CartPole-v0", help="the env whose runs to replay (default: CartPole-v0)")
    parser.add_argument("--json", default=str(ROOT / "bench" / "out" / "cost.json"), help="where to write JSON")
    try:
        args = parser.parse_args(argv)
        make_folder_for("--json", args.json)
        run_dirs = compare.found_runs(argparse.Namespace(runs_dir=args.runs_dir, env_id=args.env_id, select=[]))
        if not run_dirs:
            raise UsageError(f"no {args.env_id} runs under {args.runs_dir}: train them with compare.py first")
        compare.check_comparable(run_dirs)
    except UsageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    by_agent = reports(run_dirs)
    text = table(by_agent)
    print(text)
    print("Per decision, one observation at a time, on up to 64 of the observations the 10 evaluation episodes of")
    print("each seed's best.pt visit; mean ± sample standard deviation over seeds.")
    files.write_json(args.json, by_agent)
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
