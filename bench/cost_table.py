"""What a decision costs, SNN against ANN, over seeds: the README's cost tables.

With --runs-dir, replays the best.pt of every run of --env-id there (those compare.py trained,
selected and checked as `compare.py --read-only` does) with `--eval-only --report`, then tabulates
per agent the evaluation return and, per decision of the actor and of actor and critic together,
spikes, SynOps, MACs and energy, compute only and with memory traffic (machinery/cost.py says what
each counts): mean ± sample standard deviation over seeds. Writes the reports' figures as JSON.

    python compare.py --seeds 5 --max-steps 30000 --runs-dir runs/cost     # the runs (5 seeds each)
    python bench/cost_table.py --runs-dir runs/cost --json bench/cost.json    # the table

Given run directories instead (any runs, of any envs and flags, such as bench/reproduce.py's), it
replays each one's last.pt, the policy its run ended with, and tabulates the actor's cost per
decision, a row per configuration: agent, env, preset and the flags given beyond it, as a command
line gives them.

    python bench/cost_table.py RUN_DIR [RUN_DIR ...] --json bench/cost-reproduce.json
"""

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from replays import last_checkpoint, report  # noqa: E402

import compare  # noqa: E402
from machinery import files, stats  # noqa: E402
from machinery.cli import OneLineParser, UsageError, as_written, error, hyperparameters, make_folder_for  # noqa: E402
from machinery.presets import resolve  # noqa: E402

ROWS = [("actor", "actor"), ("actor_critic", "actor + critic")]
COLUMNS = (
    "spikes | SynOps | MACs | energy, compute (nJ) | energy, with memory (nJ) |",
    "---:|---:|---:|---:|---:|",
)


def reports(run_dirs: list[Path]) -> dict[str, list[dict]]:
    """agent -> the --report of each run's best.pt."""
    out: dict[str, list[dict]] = {name: [] for name in compare.AGENTS}
    for run_dir in run_dirs:
        agent = compare.agent_of(run_dir)
        out[agent].append(report(run_dir / "best.pt", agent))
    return out


def cost_cells(costs: list[dict]) -> str:
    """Spikes, SynOps, MACs and energy of one network per decision: mean ± sample std over the runs."""
    return (
        f"{stats.mean_std([x['spikes'] for x in costs])} | {stats.mean_std([x['synop'] for x in costs], '.0f')} "
        f"| {stats.mean_std([x['mac'] for x in costs], '.0f')} "
        f"| {stats.mean_std([x['energy_pj'] / 1e3 for x in costs], '.2f')} "
        f"| {stats.mean_std([x['energy_total_pj'] / 1e3 for x in costs], '.1f')} |"
    )


def table(by_agent: dict[str, list[dict]]) -> str:
    lines = [f"| agent | seeds | eval return | network | {COLUMNS[0]}", f"|---|---:|---:|---|{COLUMNS[1]}"]
    for name, runs in by_agent.items():
        if not runs:
            continue
        returns = stats.mean_std([r["return_mean"] for r in runs])
        for part, label in ROWS:
            lines.append(
                f"| {name} | {len(runs)} | {returns} | {label} | {cost_cells([r['cost'][part] for r in runs])}"
            )
    return "\n".join(lines) + "\n"


def trained_with(run_dir: Path) -> dict:
    """What a run's last.pt says of how it was trained: agent, env, arguments, last step."""
    ckpt = last_checkpoint(run_dir)
    return {"run_dir": str(run_dir)} | {key: ckpt[key] for key in ("agent", "env_id", "args", "step")}


def configuration(run: dict) -> str:
    """How a run was trained, as its command line gave it: agent, env, preset, and each flag whose
    value is not the preset's on that env (the seed and the flags that do not change results aside)."""
    preset = run["args"].get("preset", "tutorial")
    argv = ["--env-id", run["env_id"], "--preset", preset]
    preset_values = hyperparameters(resolve(compare.agent_args_class(run["agent"]), argv))
    given = [
        as_written(name, value)
        for name, value in run["args"].items()
        if name in preset_values and value != preset_values[name] and name not in compare.SAME_RESULT_FLAGS
    ]
    return f"{run['agent']}, {run['env_id']}: {' '.join(['--preset', preset, *given])}"


def by_configuration(runs: list[dict]) -> dict[str, list[dict]]:
    """The runs grouped by `configuration`; a UsageError for two runs of one seed in a group, which
    would count as two seeds."""
    groups: dict[str, list[dict]] = {}
    for run in runs:
        groups.setdefault(configuration(run), []).append(run)
    compare.one_run_per_seed(groups, lambda run: run["args"]["seed"], "give one of them")
    return groups


def grouped_table(runs: list[dict]) -> str:
    """The actor's cost per decision, a row per configuration."""
    lines = [f"| runs | seeds | eval return | {COLUMNS[0]}", f"|---|---:|---:|{COLUMNS[1]}"]
    for label, members in by_configuration(runs).items():
        returns = stats.mean_std([r["report"]["return_mean"] for r in members])
        costs = [r["report"]["cost"]["actor"] for r in members]
        lines.append(f"| {label} | {len(members)} | {returns} | {cost_cells(costs)}")
    return "\n".join(lines) + "\n"


def parse_cli(argv: list[str] | None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "run_dirs", nargs="*", type=Path, help="instead of --runs-dir: run directories, each with a last.pt"
    )
    parser.add_argument("--runs-dir", help="the runs of both agents, as compare.py trained them")
    parser.add_argument("--env-id", default="CartPole-v0", help="with --runs-dir: the env whose runs to replay")
    parser.add_argument("--json", default=str(ROOT / "bench" / "out" / "cost.json"), help="where to write JSON")
    args = parser.parse_args(argv)
    if (args.runs_dir is None) == (not args.run_dirs):
        parser.error("give --runs-dir DIR (a comparison's runs) or run directories (RUN_DIR ...), one of the two")
    args.run_dirs = list(dict.fromkeys(args.run_dirs))  # a run named twice (overlapping globs) is replayed once
    for run_dir in args.run_dirs:
        if not (run_dir / "last.pt").is_file():
            parser.error(f"{run_dir}: no last.pt there (give the directories of finished runs)")
    make_folder_for("--json", args.json)
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
        if args.run_dirs:
            runs = [trained_with(run_dir) for run_dir in args.run_dirs]
            by_configuration(runs)  # two runs of one seed: refused before anything is replayed
            runs = [run | {"report": report(Path(run["run_dir"]) / "last.pt", run["agent"])} for run in runs]
            text, sample = grouped_table(runs), "the last.pt of each run"
            files.write_json(args.json, {"runs": runs})
        else:
            run_dirs = compare.found_runs(argparse.Namespace(runs_dir=args.runs_dir, env_id=args.env_id, select=[]))
            if not run_dirs:
                raise UsageError(f"no {args.env_id} runs under {args.runs_dir}: train them with compare.py first")
            compare.check_comparable(run_dirs)
            by_agent = reports(run_dirs)
            text, sample = table(by_agent), "each seed's best.pt"
            files.write_json(args.json, by_agent)
    except UsageError as e:
        return error(e)
    print(text)
    print(f"Per decision, one observation at a time, on up to 64 of the observations that 10 episodes of {sample}")
    print("visit; mean ± sample standard deviation over seeds.")
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
