"""Reproduce CleanRL's published PPO returns with both agents, and draw them (README, "Results").

Trains `PPO.py` and `Spiking_PPO.py` with `--preset cleanrl` (or the flags given after `--`) on each
task at CleanRL's budget in environment steps, over seeds, two runs at a time; each finished run is
added to the JSON at once, so an interrupted benchmark keeps what it finished and a second call
skips the runs already there, resumes (`--resume`) those the first left unfinished in --runs-dir,
and records those it finished without recording them. `--plot` draws the curves of one
configuration (--name; one panel per task: each agent's mean over seeds, shaded over the range of
the runs) and writes its results beside CleanRL's numbers, each agent's best configuration, and the
results of every configuration.

    python bench/reproduce.py --tasks CartPole-v1 --seeds 3            # train, adding to the JSON
    python bench/reproduce.py --plot                                   # figure and tables from the JSON
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import json
import os
import re
import signal
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import PPO  # noqa: E402
import Spiking_PPO  # noqa: E402
from compare import common_grid, read_curves  # noqa: E402
from machinery import files, resources, stats  # noqa: E402
from machinery.cli import OneLineParser, UsageError, check_positive, error, make_folder_for  # noqa: E402
from machinery.presets import resolve  # noqa: E402
from machinery.run import claimed, side_by_side, train_or_reuse  # noqa: E402
from Spiking_PPO import SpikingArgs  # noqa: E402

# CleanRL's published PPO returns (docs.cleanrl.dev, ppo.py and ppo_continuous_action.py: mean ± std
# over 3 seeds), their tasks' budgets in environment steps, and the -v5 task we run for each -v4 one.
TASKS = {
    "CartPole-v1": {"env_steps": 500_000, "cleanrl": (490.04, 6.12)},
    "Acrobot-v1": {"env_steps": 500_000, "cleanrl": (-86.36, 1.32)},
    "HalfCheetah-v5": {"env_steps": 1_000_000, "cleanrl": (1442.64, 46.03), "cleanrl_env": "HalfCheetah-v4"},
    "Hopper-v5": {"env_steps": 1_000_000, "cleanrl": (2382.86, 271.74), "cleanrl_env": "Hopper-v4"},
    "Pendulum-v1": {"env_steps": 500_000, "cleanrl": None},
}
AGENTS = {"PPO": PPO.AGENT, "Spiking-PPO": Spiking_PPO.AGENT}
SCRIPTS = {name: f"{agent.script}.py" for name, agent in AGENTS.items()}
BEST_MIN_SEEDS = 3  # the best-configuration table's candidates: a mean of 1 or 2 seeds is too easily lucky
EVALUATIONS = 50  # per run, evenly spaced: an evaluation plays 10 whole episodes (10,000 steps on MuJoCo)
# A configuration run again at a later commit, whose code rounds differently, is named after it:
# <configuration>-at-<commit>. It checks what carries over, and is no candidate for the best.
RERUN = re.compile(r"-at-[0-9a-f]{7,40}$")


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), help="tasks to train on")
    parser.add_argument("--agents", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS), help="agents to train")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per agent and task (1, 2, ..., K)")
    parser.add_argument(
        "--from-seed", type=int, default=1, help="train seeds from this one to --seeds (to split seeds between runs)"
    )
    parser.add_argument(
        "--name",
        default="cleanrl",
        help="the configuration (--plot: the one drawn); NAME-at-COMMIT (a 7 to 40 digit hash) is NAME run "
        "again at a later commit: set beside NAME's runs of its seeds, never a candidate for the best",
    )
    parser.add_argument("--workers", type=int, default=min(2, resources.usable_cores()), help="training runs at once")
    parser.add_argument("--json", default=str(ROOT / "bench" / "results-reproduce.json"), help="results file")
    parser.add_argument("--runs-dir", default=str(ROOT / "bench" / "runs-reproduce"), help="the runs' directories")
    parser.add_argument("--plot", action="store_true", help="train nothing: figure and table from the JSON")
    parser.add_argument("--out", default=str(ROOT / "bench" / "reproduce"), help="with --plot: output prefix")
    parser.add_argument("flags", nargs="*", help="after --: flags for both scripts (default: --preset cleanrl)")
    args = parser.parse_args(argv)
    args.tasks, args.agents = list(dict.fromkeys(args.tasks)), list(dict.fromkeys(args.agents))  # a run once
    check_positive(args, "seeds", "workers")
    resources.check_cores(args.workers, "--workers")  # each run's seconds are recorded
    if not 1 <= args.from_seed <= args.seeds:
        parser.error(f"--from-seed must be in 1..--seeds ({args.seeds}), got {args.from_seed}")
    if args.plot:
        make_folder_for("--out", args.out, (".svg", ".png", ".md"))
    else:  # each run is recorded as it ends: a JSON that cannot be written would lose it
        make_folder_for("--json", args.json, keys=("runs",))
    return args


def resolved_args(task: str, flags: list[str], args_cls: type = SpikingArgs):
    """The arguments a run of `task` with these flags trains with, its preset resolved as the scripts
    do, the flags parsed as `args_cls`'s (the agent's); a UsageError names a flag it lacks."""
    argv = ["--env-id", task, *flags]
    return resolve(args_cls, argv)


def num_envs(task: str, flags: list[str], args_cls: type = SpikingArgs) -> int:
    """The envs a run of `task` with these flags steps at once."""
    return resolved_args(task, flags, args_cls).num_envs


def command(args: argparse.Namespace, task: str, agent: str, seed: int) -> list[str]:
    """One run: the task's budget in environment steps is --max-steps (rollout steps) x --num-envs."""
    flags = args.flags or ["--preset", "cleanrl"]
    max_steps = TASKS[task]["env_steps"] // num_envs(task, flags, AGENTS[agent].args_cls)
    return [sys.executable, str(ROOT / SCRIPTS[agent]), "--env-id", task, *flags, "--seed", str(seed)] + [
        "--max-steps", str(max_steps), "--eval-interval", str(max_steps // EVALUATIONS),
        "--runs-dir", args.runs_dir, "--quiet",
    ]  # fmt: skip


def add_record(path: Path, record: dict) -> None:
    """Append one run to the JSON: re-read under an exclusive lock, so that several invocations at
    once (other tasks, other configurations) all keep their runs, and replace the file whole, so that
    a kill never leaves half a JSON."""
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = json.loads(path.read_text()) if path.exists() else {"runs": []}
        results["runs"].append(record)
        files.write_json(path, results, indent=1)


def jobs_to_run(args: argparse.Namespace, runs: list[dict]) -> list[tuple[str, str, int]]:
    """(task, agent, seed) of every run asked for that `runs` (the JSON's) does not hold yet."""
    done = {(r["name"], r["task"], r["agent"], r["seed"]) for r in runs}
    return [
        (task, agent, seed)
        for task in args.tasks
        for seed in range(args.from_seed, args.seeds + 1)
        for agent in args.agents
        if (args.name, task, agent, seed) not in done
    ]


def train(args: argparse.Namespace) -> int:
    """Train and record every run asked for that the JSON lacks; how many of them failed. Another
    reproduce.py (or compare.py) training any of the same runs at the time refuses to start (`claimed`)."""
    path = Path(args.json)
    jobs = jobs_to_run(args, json.loads(path.read_text())["runs"] if path.exists() else [])
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # the runs are the parallelism here

    def run(job: tuple[str, str, int]) -> bool:
        task, agent, seed = job
        say = functools.partial(print, f"{task} {agent} seed {seed}:", file=sys.stderr)
        try:
            cmd = command(args, task, agent, seed)
            run_dir, earlier_step, result = train_or_reuse(AGENTS[agent], cmd[2:], say, env)
        except UsageError as e:  # a flag of the other agent's alone (--T for PPO.py): this run cannot start
            print(f"failed: {SCRIPTS[agent]} on {task}, seed {seed}: {e}", file=sys.stderr)
            return False
        if run_dir is None:
            print(f"failed: {' '.join(result.args)}: {result.stderr.strip()[-300:]}", file=sys.stderr)
            return False
        record = {"name": args.name, "task": task, "agent": agent, "seed": seed, "command": " ".join(cmd[1:])}
        if result is not None and earlier_step is not None:  # a resumed run computes what an uninterrupted one does
            record["resumed_from_step"] = earlier_step
        curve = read_curves([run_dir], task)[0][agent][0]
        record |= {"final": float(curve[-1, 2]), "seconds": float(curve[-1, 1]), "curve": curve.tolist()}
        add_record(path, record)
        print(f"{task} {agent} seed {seed}: final eval return {record['final']:.1f} in {record['seconds']:.0f} s")
        return True

    with claimed(list(resolved_runs(args, jobs))):
        return sum(not ok for ok in side_by_side(run, jobs, args.workers))


def resolved_runs(args: argparse.Namespace, jobs: list[tuple[str, str, int]]):
    """(agent, args) of each job's run, for `claimed`; a job whose flags are not its script's is left
    to fail in its turn, with its own message."""
    for task, agent, seed in jobs:
        try:
            yield AGENTS[agent], resolve(AGENTS[agent].args_cls, command(args, task, agent, seed)[2:])
        except UsageError:
            continue


def share_of_ann(snn: float, ann: float) -> str:
    """The SNN's return as a share of the ANN's, 100% when equal and less when worse: SNN / ANN for
    positive returns, ANN / SNN for negative ones (costs, as on Acrobot and Pendulum); '-' when the
    signs differ, where no ratio means anything. One decimal: a share just under a goal (issue #13's
    is 90%) must not print as the goal."""
    if snn > 0 and ann > 0:
        return f"{snn / ann:.1%}"
    if snn < 0 and ann < 0:
        return f"{ann / snn:.1%}"
    return "-"


def finals(runs: list[dict], task: str, name: str, agent: str) -> list[float]:
    return [r["final"] for r in runs if (r["task"], r["name"], r["agent"]) == (task, name, agent)]


def table(runs: list[dict], tasks: list[str]) -> str:
    """One row per task and configuration (--name), the configuration --plot draws first."""
    lines = [
        "| task | configuration | CleanRL PPO (published, 3 seeds) | PPO (ANN) | Spiking PPO | SNN / ANN |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for task in tasks:
        for name in dict.fromkeys(r["name"] for r in runs if r["task"] == task):
            ann, snn = (finals(runs, task, name, agent) for agent in SCRIPTS)
            published = TASKS[task]["cleanrl"]
            cleanrl_env = TASKS[task].get("cleanrl_env", task)
            cleanrl = f"{published[0]:.2f} ± {published[1]:.2f} ({cleanrl_env})" if published else "-"
            share = share_of_ann(np.mean(snn), np.mean(ann)) if ann and snn else "-"
            cells = [f"{stats.mean_std(v)} ({len(v)})" if v else "-" for v in (ann, snn)]
            lines.append(f"| {task} | {name} | {cleanrl} | {' | '.join(cells)} | {share} |")
    lines += [
        "",
        "Final evaluation return (10 episodes, stochastic policy, at the end of the budget): mean ± sample "
        "standard deviation over seeds, (number of seeds). SNN / ANN: the SNN's mean return as a share of the "
        "ANN's (for negative returns, ANN / SNN), in the same configuration.",
    ]
    return "\n".join(lines) + "\n"


def best_configuration(runs: list[dict], task: str, agent: str) -> tuple[str, list[float]] | None:
    """The agent's configuration with the highest mean final return on the task, and its returns,
    among those run on at least BEST_MIN_SEEDS seeds (or on as many as any was): a lead stopped
    after its first seeds competes only where nothing was run on more. A rerun (RERUN) does not
    compete: the better of two draws of one configuration would favour luck again."""
    names = dict.fromkeys(
        r["name"] for r in runs if (r["task"], r["agent"]) == (task, agent) and not RERUN.search(r["name"])
    )
    if not names:
        return None
    returns = {name: finals(runs, task, name, agent) for name in names}
    needed = min(BEST_MIN_SEEDS, max(len(v) for v in returns.values()))
    name = max((n for n, v in returns.items() if len(v) >= needed), key=lambda n: np.mean(returns[n]))
    return name, returns[name]


def best_table(runs: list[dict], tasks: list[str]) -> str:
    """Per task, each agent's best configuration, the SNN's share of the ANN's return there, and how
    far apart the two means lie for their spread over seeds."""
    lines = [
        "| task | PPO (ANN): best configuration | Spiking PPO: best configuration | SNN / ANN "
        "| SNN - ANN, in standard errors |",
        "|---|---|---|---:|---:|",
    ]
    for task in tasks:
        ann, snn = (best_configuration(runs, task, agent) for agent in SCRIPTS)
        cells = [f"{b[0]}: {stats.mean_std(b[1])} ({len(b[1])})" if b else "-" for b in (ann, snn)]
        versus = "- | -"
        if ann and snn:
            versus = f"{share_of_ann(np.mean(snn[1]), np.mean(ann[1]))} | {stats.apart(snn[1], ann[1])}"
        lines.append(f"| {task} | {' | '.join(cells)} | {versus} |")
    lines += [
        "",
        f"Each agent's configuration with the highest mean final return among those run on at least "
        f"{BEST_MIN_SEEDS} seeds where any was, (number of seeds). Picking the best of several configurations "
        "favours a lucky one where seeds are few. In standard errors: the difference of the two means over "
        "its standard error, sqrt(s_SNN^2 / n_SNN + s_ANN^2 / n_ANN); below 0 where the SNN returned less.",
    ]
    return "\n".join(lines) + "\n"


def rerun_rows(runs: list[dict], task: str, name: str) -> list[str]:
    """A rerun's row per agent: its seeds' returns beside the recorded runs' of the same seeds, and the
    SNN's share of the ANN's return, in the same configuration and at the ANN's best, before and after."""
    configuration, rows = RERUN.sub("", name), []
    best = best_configuration(runs, task, "PPO")
    anns = [finals(runs, task, configuration, "PPO"), best[1] if best else []]
    for agent in SCRIPTS:
        again, recorded = (
            {r["seed"]: r["final"] for r in runs if (r["task"], r["name"], r["agent"]) == (task, n, agent)}
            for n in (name, configuration)
        )
        seeds = sorted(set(again) & set(recorded))
        if not seeds:
            continue
        before, after = [recorded[s] for s in seeds], [again[s] for s in seeds]
        shares = [
            f"{share_of_ann(np.mean(before), np.mean(ann))}, {share_of_ann(np.mean(after), np.mean(ann))}"
            if ann and agent == "Spiking-PPO"
            else "-"
            for ann in anns
        ]
        cells = " | ".join(
            [f"{stats.mean_std(v)} ({len(v)})" for v in (before, after)] + [stats.apart(after, before)] + shares
        )
        rows.append(f"| {task} | {name} | {agent} | {cells} |")
    return rows


def rerun_table(runs: list[dict], tasks: list[str]) -> str:
    """Each configuration run again at a later commit (RERUN) beside its recorded runs of the same seeds:
    what carries over to code that rounds differently. '' where nothing was run again."""
    rows = [
        row
        for task in tasks
        for name in dict.fromkeys(r["name"] for r in runs if r["task"] == task and RERUN.search(r["name"]))
        for row in rerun_rows(runs, task, name)
    ]
    if not rows:
        return ""
    lines = [
        "| task | run again | agent | recorded, the same seeds | run again | again - recorded, in standard errors "
        "| SNN / ANN, same configuration: recorded, again | SNN / ANN's best: recorded, again |",
        "|---|---|---|---:|---:|---:|---:|---:|",
        *rows,
        "",
        "A configuration run again at a later commit (`<configuration>-at-<commit>`), whose code computes the "
        "same functions, in places in another order of float operations, beside the recorded runs of the same "
        "seeds: final evaluation return, mean ± sample standard deviation over seeds, (number of seeds). "
        "SNN / ANN: the SNN's mean as a share of the ANN's mean over all its seeds, in the configuration run "
        "again where the ANN ran it, and in the ANN's best configuration.",
    ]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], tasks: list[str], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks, strict=True):
        budget, seeds = TASKS[task]["env_steps"], []
        for color, agent in zip(("C0", "C1"), SCRIPTS, strict=True):  # an agent keeps its colour in every panel
            curves = [np.array(r["curve"]) for r in runs if r["task"] == task and r["agent"] == agent]
            if not curves:
                continue
            grid, returns = common_grid(curves, 0)
            scale = budget / curves[0][-1, 0]  # rollout steps -> environment steps
            ax.plot(grid * scale, returns.mean(axis=0), color=color, label=agent)
            seeds.append(f"{agent} {len(curves)}")
            ax.fill_between(grid * scale, returns.min(axis=0), returns.max(axis=0), color=color, alpha=0.25)
        published = TASKS[task]["cleanrl"]
        if published:
            ax.axhline(published[0], color="grey", linestyle=":", linewidth=1, label="CleanRL (published)")
        ax.set_title(f"{task} (seeds: {', '.join(seeds)})", fontsize=9)  # panels differ: in the title, not the legend
        ax.set_xlabel("environment steps")
    axes[0][0].set_ylabel("eval return: mean over seeds, shaded: range")
    axes[0][0].legend(fontsize=8, loc="best")
    fig.tight_layout()
    files.save_figure(fig, path, dpi=110)
    plt.close(fig)


def runs_to_draw(args: argparse.Namespace) -> tuple[list[dict], list[dict], list[str]]:
    """--plot: every run the JSON records, those of --name, and the --tasks they ran; a UsageError if none."""
    path = Path(args.json)
    if not path.is_file():
        raise UsageError(f"--json {path}: no such file; train the runs first (the same command without --plot)")
    try:
        runs = json.loads(path.read_text())["runs"]
        drawn = [r for r in runs if r["name"] == args.name]
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        raise UsageError(f"--json {path}: not a results file of reproduce.py (a JSON object with its runs)") from None
    tasks = [t for t in args.tasks if any(r["task"] == t for r in drawn)]
    if not tasks:
        names = ", ".join(sorted({r["name"] for r in runs}))
        raise UsageError(f"--name {args.name}: no runs of it on {', '.join(args.tasks)} in {path} (recorded: {names})")
    return runs, drawn, tasks


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
        if not args.plot:
            if failed := train(args):  # each said why above; a cluster job must not read success
                return error(f"{failed} run{'s' * (failed > 1)} failed (above); the others are recorded", 1)
            return 0
        runs, drawn, tasks = runs_to_draw(args)
    except UsageError as e:
        return error(e)
    except KeyboardInterrupt:
        print(
            "stopped by SIGINT; the same command resumes the stopped runs and skips the recorded ones", file=sys.stderr
        )
        return 128 + signal.SIGINT
    plot(drawn, tasks, args.out)
    others = sorted((r for r in runs if r["name"] != args.name and r["task"] in tasks), key=lambda r: r["name"])
    # The drawn configuration's table goes beside its figure, then the best of all; every configuration's
    # table, where there are others, last (the README shows the first two, docs/results.md the third).
    tables = table(drawn, tasks) + "\n" + best_table(runs, tasks)
    if others:
        tables += "\n" + table(drawn + others, tasks)
    if reruns := rerun_table(runs, tasks):
        tables += "\n" + reruns
    files.write_text(f"{args.out}.md", tables)
    print(tables)
    print(f"written: {args.out}.svg/.png, {args.out}.md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
