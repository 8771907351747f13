"""Compare the spiking agent with its ANN twin over several seeds.

Trains both scripts over K seeds (in parallel, up to the number of cores), with the training flags
given after `--` (a flag only the SNN has goes to it alone), and compares those runs (resuming one the
same command started before and was stopped, taking one it finished as it is); or, with
--read-only, compares the runs already in a runs directory that --select picks. Runs of
one agent are averaged only if they share their env, length and every hyperparameter but the seed,
one run per seed; otherwise the tool refuses and names the flags that differ, or the runs of one
seed. It draws the evaluation-return curves of each agent (mean over seeds, shaded: a 95% bootstrap
interval of the mean with 5 or more seeds, the range of the runs with fewer) against rollout steps
and against training seconds, and writes a table per agent: final mean return, rollout steps and
training seconds to reach the target return (--target, or the env's reward threshold where it has
one), and training seconds per 1e4 rollout steps (mean ± sample standard deviation over seeds),
and how many standard errors of their difference the two agents' means of these lie apart.

    python compare.py --seeds 5 --max-steps 30000                 # train 5 seeds of each agent, compare them
    python compare.py --env-id Pendulum-v1 --seeds 5 --max-steps 500000 --target -200 -- --preset cleanrl-bootstrap \
        --eval-interval 10000
    python compare.py --read-only --runs-dir runs --select max_steps=30000   # compare runs already there
"""

from __future__ import annotations

import argparse
import functools
import importlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

from machinery import files, resources, stats
from machinery.checkpoints import CheckpointError, read_checkpoint
from machinery.cli import (
    OneLineParser,
    UsageError,
    as_written,
    check_positive,
    cli_flag,
    error,
    flags_for_each,
    given_flags,
    hyperparameters,
    is_written,
    make_folder_for,
    refuse_unrecognized,
)
from machinery.envs import solved_return
from machinery.presets import resolve
from machinery.run import Agent, check_it_evaluates, claimed, logged_scalars, side_by_side, train_or_reuse

AGENTS = {"Spiking-PPO": "Spiking_PPO", "PPO": "PPO"}  # TensorBoard name -> script
SAME_RESULT_FLAGS = ("seed", "runs_dir", "device", "threads", "vectorization")  # may differ between the runs
# what compare.py gives each run itself, and how to ask it for another value
OWN_FLAGS = {name: "give it to compare.py, before --" for name in ("env_id", "max_steps", "runs_dir")}
OWN_FLAGS["seed"] = "compare.py trains seeds 1 to --seeds"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs-dir", default="runs", help="where runs are written and read")
    parser.add_argument("--env-id", default="CartPole-v0", help="env to train on and compare")
    parser.add_argument("--seeds", type=int, help="seeds per agent, 1..K (default: 5)")
    parser.add_argument(
        "--max-steps",
        type=int,
        help="rollout steps per run (default: the scripts' own, 100000, or the budget of a --preset after --)",
    )
    parser.add_argument("--workers", type=int, help="training runs at once (default: the number of cores)")
    parser.add_argument("--read-only", action="store_true", help="train nothing; compare runs in --runs-dir")
    parser.add_argument(
        "--select",
        nargs="*",
        action="extend",
        default=[],
        metavar="FLAG=VALUE",
        help="with --read-only: only runs made with these flags, by field name: hidden_size=64",
    )
    parser.add_argument(
        "--target",
        type=float,
        help="return that counts as solved (default: the env's reward threshold in its gymnasium spec; "
        "none there: returns alone are compared)",
    )
    parser.add_argument("--out", default="comparison", help="output prefix: <out>-steps.svg/png, -time, .md")
    parser.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the interval")
    parser.add_argument(
        "flags",
        nargs="*",
        help="after --: training flags for both scripts (one that only one agent has, --T or --activation, "
        "goes to that agent alone)",
    )
    args, extras = parser.parse_known_args(argv)
    if extras:  # the scripts' args classes import torch: only where needed
        classes = [agent_args_class(agent) for agent in AGENTS]
        refuse_unrecognized(
            extras, classes, "training flags go after --: python compare.py [its options] -- --flag value"
        )
    training = {"seeds": 5, "max_steps": None, "workers": resources.usable_cores()}  # max_steps: see run_length
    if args.read_only and (given := [cli_flag(k) for k in training if getattr(args, k) is not None]):
        parser.error(f"{', '.join(given)} with --read-only: it trains nothing; pick runs with --select")
    for name, default in training.items():
        setattr(args, name, default if getattr(args, name) is None else getattr(args, name))
    check_positive(args, "seeds", "max_steps", "workers", "bootstrap")
    resources.check_cores(args.workers, "--workers")  # the table reports each run's training seconds
    if args.select and not args.read_only:
        parser.error("--select picks among existing runs: use it with --read-only")
    if args.flags and args.read_only:
        parser.error("the flags after -- are for the runs compare.py trains; with --read-only, pick runs with --select")
    for item in args.select:
        if "=" not in item:
            parser.error(f"--select {item!r}: expected FLAG=VALUE")
    pairs = [item.split("=", 1) for item in args.select]
    for name in dict.fromkeys(name for name, _ in pairs):
        if len(values := [value for flag, value in pairs if flag == name]) > 1:
            parser.error(f"--select gives {name} twice ({', '.join(values)}): a run has one value")
    return args


def training_flags(args: argparse.Namespace) -> dict[str, list[str]]:
    """Each agent's share of the flags after --, checked as its script will check them (values, preset,
    env), so that bad input stops the comparison before it trains anything."""
    classes = {name: agent_args_class(name) for name in AGENTS}
    shares = flags_for_each(args.flags, classes)
    for name, flags in shares.items():
        cls, argv = classes[name], ["--env-id", args.env_id, *flags, *run_length(args)]
        for given in sorted(given_flags(cls, flags)):
            if given in OWN_FLAGS:
                raise UsageError(f"{cli_flag(given)} after --: compare.py sets it for each run; {OWN_FLAGS[given]}")
            if given in cls.ACTION_FLAGS:
                raise UsageError(f"{cli_flag(given)} after --: not a training flag")
        check_it_evaluates(resolve(cls, argv), "compare.py", "--eval-interval N after --")
    return shares


def run_length(args: argparse.Namespace) -> list[str]:
    """--max-steps as given to compare.py, or nothing: each run then trains as long as its script would
    with the same flags (100000 rollout steps, or its --preset's budget: 1M steps at cleanrl on MuJoCo)."""
    return [] if args.max_steps is None else ["--max-steps", str(args.max_steps)]


class RunFailed(Exception):
    """A run compare.py trained did not end well (it diverged, say): not the command's fault, exit status 1."""


def train_runs(args: argparse.Namespace) -> list[Path]:
    """Train every seed of both agents; the run directories they wrote. A run in --runs-dir made with
    every flag alike (`find_run`: one this same command started before, say) is resumed where it
    stopped, or taken as it is if it finished: a Ctrl-C loses nothing, and more --seeds train the new ones.
    Another compare.py training any of the same runs at the time refuses to start (`claimed`)."""
    shares = training_flags(args)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # torch would start a thread per core in every run

    def flags(name: str, seed: int) -> list[str]:
        common = ["--env-id", args.env_id, "--seed", str(seed), *run_length(args), "--runs-dir", args.runs_dir]
        return [*common, "--quiet", *shares[name]]

    def train(job: tuple[str, int]) -> tuple[Path | None, subprocess.CompletedProcess | None]:
        name, seed = job
        say = functools.partial(print, f"{name} seed {seed}:", file=sys.stderr)
        run_dir, _, result = train_or_reuse(agent_record(name), flags(name, seed), say, env)
        return run_dir, result

    jobs = [(name, seed) for name in AGENTS for seed in range(1, args.seeds + 1)]
    runs = [(agent_record(name), resolve(agent_args_class(name), flags(name, seed))) for name, seed in jobs]
    with claimed(runs):
        outcomes = list(side_by_side(train, jobs, args.workers))
    failed = [(job, result) for job, (run_dir, result) in zip(jobs, outcomes, strict=True) if run_dir is None]
    if failed:
        ((name, seed), result), others = failed[0], len(failed) - 1
        last = (result.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("error: ")
        more = f" (and {others} more run{'s' * (others > 1)})" if others else ""
        raise RunFailed(f"{AGENTS[name]}.py --seed {seed} failed{more}: {last}")
    return [run_dir for run_dir, _ in outcomes]


def found_runs(args: argparse.Namespace) -> list[Path]:
    """--read-only: the runs of --env-id under --runs-dir (sweeps nest them) that --select picks."""
    runs_dir = Path(args.runs_dir)
    wanted = {flag.replace("-", "_"): value for flag, value in (item.split("=", 1) for item in args.select)}
    if not runs_dir.is_dir():
        raise UsageError(f"--runs-dir {runs_dir}: no such directory; name the one that holds the runs")
    if (runs_dir / "last.pt").is_file():
        raise UsageError(f"--runs-dir {runs_dir}: a run's own directory; name the one that holds the runs")
    found = ((run_dir, run_arguments(run_dir)) for run_dir in sorted(runs_dir.rglob(f"{args.env_id}__*")))
    runs = {run_dir: run_args for run_dir, run_args in found if run_args is not None}  # None: not a run of ours
    unknown = set(wanted) - set().union(*runs.values())
    if runs and unknown:
        raise UsageError(
            f"--select {min(unknown)}=...: the runs have no such flag; name a training flag as the scripts' "
            "dataclass fields do (learning_rate, hidden_size, T)"
        )
    picked = [d for d, a in runs.items() if all(is_written(a.get(k), v) for k, v in wanted.items())]
    if runs and not picked:
        raise UsageError(
            f"--select {' '.join(args.select)} picks none of the {len(runs)} {args.env_id} runs under {runs_dir}"
        )
    return picked


def agent_of(run_dir: Path) -> str | None:
    """The agent whose run directory this is (<env-id>__<script>__<seed>__<time>), if either's."""
    parts = run_dir.name.split("__")
    return next((name for name, script in AGENTS.items() if len(parts) == 4 and parts[1] == script), None)


def run_arguments(run_dir: Path) -> dict | None:
    """The hyperparameters a run was made with (its last.pt's), or None for what is not a run of ours.
    A flag added after the run was made counts at its default: what runs before it computed."""
    agent = agent_of(run_dir)
    try:
        return default_arguments(agent) | read_checkpoint(run_dir / "last.pt", agent)["args"] if agent else None
    except CheckpointError:
        return None


@functools.cache
def default_arguments(agent: str) -> dict:
    return hyperparameters(agent_args_class(agent)())


def agent_record(agent: str) -> Agent:
    """The script's `Agent` (its name, args class, network), by the agent's TensorBoard name."""
    return importlib.import_module(AGENTS[agent]).AGENT


def agent_args_class(agent: str) -> type:
    return agent_record(agent).args_cls


def check_comparable(run_dirs: list[Path]) -> None:
    """Refuse to average runs that differ in anything but the seed (and flags that do not change results),
    or two runs of one seed: the same run twice would count as two seeds and narrow the spread."""
    configs, by_agent = {}, {}
    for run_dir in run_dirs:
        run_args = run_arguments(run_dir) or {}
        configs.setdefault(agent_of(run_dir), []).append(
            {k: v for k, v in run_args.items() if k not in SAME_RESULT_FLAGS}
        )
        by_agent.setdefault(agent_of(run_dir), []).append({"run_dir": run_dir.name, "seed": run_args.get("seed")})
    shared_keys = set.intersection(*(set(c) for runs in configs.values() for c in runs)) if configs else set()
    differing = []
    for key in sorted(shared_keys):  # within an agent, and between the agents (except the SNN's own flags)
        values = {as_written(key, c[key], False) for runs in configs.values() for c in runs}
        if len(values) > 1:
            differing.append(f"{cli_flag(key)} ({', '.join(sorted(values))})")
    for agent, runs in configs.items():
        for key in sorted(set(runs[0]) - shared_keys):
            values = {as_written(key, c[key], False) for c in runs}
            if len(values) > 1:
                differing.append(f"{cli_flag(key)} of {agent} ({', '.join(sorted(values))})")
    if differing:
        raise UsageError(
            f"the runs differ in {'; '.join(differing)}: pick comparable ones with --read-only --select FLAG=VALUE"
        )
    one_run_per_seed(by_agent, lambda run: run["seed"], "move all but one out of --runs-dir")


def one_run_per_seed(grouped: dict[str, list[dict]], seed_of: Callable[[dict], int], fix: str) -> None:
    """A UsageError, ending in `fix`, where a group of runs (each a dict with its "run_dir") holds two
    runs of one seed: the same run twice would count as two seeds and narrow the spread."""
    for label, members in grouped.items():
        by_seed: dict[int, list[dict]] = {}
        for run in members:
            by_seed.setdefault(seed_of(run), []).append(run)
        for seed, runs in by_seed.items():
            if len(runs) > 1:
                names = ", ".join(str(run["run_dir"]) for run in runs)
                raise UsageError(f"{label}: {len(runs)} runs of --seed {seed} ({names}): a seed counts once; {fix}")


OUTPUTS = ("-steps.svg", "-steps.png", "-time.svg", "-time.png", ".md")  # what --out prefixes
COST_TAGS = ("cost/actor_synops_per_decision", "cost/actor_energy_pj_per_decision")


def read_curves(run_dirs: list[Path], env_id: str) -> tuple[dict[str, list[np.ndarray]], dict[str, list[dict]]]:
    """agent -> one array per run, rows (rollout step, training seconds so far, eval return); and
    agent -> per run, the last measured cost per decision of its actor (COST_TAGS)."""
    curves: dict[str, list[np.ndarray]] = {name: [] for name in AGENTS}
    costs: dict[str, list[dict]] = {name: [] for name in AGENTS}
    for run_dir in run_dirs:
        name = agent_of(run_dir)
        logged = logged_scalars(run_dir)
        tag = f"{name}-{env_id}/Reward"
        if not {tag, "charts/elapsed_seconds"} <= logged.keys():
            continue
        seconds = dict(logged["charts/elapsed_seconds"])
        curves[name].append(np.array([(step, seconds[step], value) for step, value in logged[tag]]))
        costs[name].append({t: logged[t][-1, 1] if t in logged else np.nan for t in COST_TAGS})
    if not any(curves.values()):
        raise UsageError(f"no {env_id} runs with an eval-return curve; train some, or drop --read-only")
    lengths = {int(run[-1, 0]) for runs in curves.values() for run in runs}
    if len(lengths) > 1:
        raise UsageError(
            f"the runs end at different steps ({', '.join(map(str, sorted(lengths)))}): an interrupted or stopped "
            "run is not comparable; resume it, or pick runs with --read-only --select FLAG=VALUE"
        )
    return curves, costs


def common_grid(runs: list[np.ndarray], column: int, points: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """The runs' returns interpolated on one grid of `column` (0: steps, 1: seconds) they all cover."""
    end = min(run[-1, column] for run in runs)
    grid = np.linspace(max(run[0, column] for run in runs), end, points)
    return grid, np.stack([np.interp(grid, run[:, column], run[:, 2]) for run in runs])


def plot(curves: dict[str, list[np.ndarray]], column: int, args: argparse.Namespace, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    kinds = set()
    for name, runs in curves.items():
        if not runs:
            continue
        grid, returns = common_grid(runs, column)
        low, high = stats.interval(returns, args.bootstrap)
        kinds.add(stats.interval_kind(len(runs)))
        ax.plot(grid, returns.mean(axis=0), label=f"{name} ({len(runs)} seed{'s' * (len(runs) > 1)})")
        ax.fill_between(grid, low, high, alpha=0.25)
    if args.target is not None:
        ax.axhline(args.target, color="grey", linestyle=":", linewidth=1, label=f"target {args.target:g}")
    ax.set_xlabel(["rollout steps", "training seconds (evaluations included, start-up not)"][column])
    ax.set_ylabel("mean eval return")
    ax.set_title(f"{args.env_id}: mean over seeds; shaded: {' / '.join(sorted(kinds))}", fontsize=9)
    ax.legend(loc="best")  # clear of the curves, wherever a run left them
    fig.tight_layout()
    files.save_figure(fig, path, dpi=120)
    plt.close(fig)


def first_reaching(run: np.ndarray, target: float) -> tuple[float, float]:
    hits = np.flatnonzero(run[:, 2] >= target)
    return (run[hits[0], 0], run[hits[0], 1]) if len(hits) else (np.nan, np.nan)


def seed_figures(runs: list[np.ndarray], target: float | None) -> list[tuple[list[float], str]]:
    """One agent's learning and speed figures, each its value per seed and its format: final return,
    rollout steps and training seconds to the target (NaN where a run never reached it), training
    seconds per 1e4 rollout steps."""
    figures = [([run[-1, 2] for run in runs], ".1f")]
    if target is not None:
        hits = [first_reaching(run, target) for run in runs]
        figures += [([h[0] for h in hits], ".0f"), ([h[1] for h in hits], ".1f")]
    return figures + [([run[-1, 1] / run[-1, 0] * 1e4 for run in runs], ".1f")]


def summary_table(curves: dict[str, list[np.ndarray]], costs: dict[str, list[dict]], target: float | None) -> str:
    """The table of comparison.md: a row per agent and, with both agents' runs, a row of how many
    standard errors apart their means lie; without a target (an env with no reward threshold, and
    no --target), without the steps and seconds to it."""
    to_target = [] if target is None else [f"rollout steps to {target:g}", f"training seconds to {target:g}"]
    header = ["agent", "seeds", "final eval return", *to_target, "training seconds per 1e4 steps"]
    header += ["actor SynOps per decision", "actor energy per decision (nJ)"]
    lines = ["| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    figures = {name: seed_figures(runs, target) for name, runs in curves.items() if runs}
    for name, agent_figures in figures.items():
        cells = [name, str(len(curves[name]))] + [stats.mean_std(values, fmt) for values, fmt in agent_figures]
        cells += [stats.mean_std([c[COST_TAGS[0]] for c in costs[name]], ".0f")]
        cells += [stats.mean_std([c[COST_TAGS[1]] / 1e3 for c in costs[name]], ".2f")]
        lines.append("| " + " | ".join(cells) + " |")
    versus = ""
    if len(figures) == 2 and min(len(curves[name]) for name in figures) >= 2:  # one seed: no spread to measure by
        (snn, ann) = figures.values()
        apart = [stats.apart(a, b) for (a, _), (b, _) in zip(snn, ann, strict=True)]
        # the cost differs by the networks' design, not by chance: no standard errors for it
        lines.append("| " + " | ".join([" - ".join(figures) + ", in standard errors", "-", *apart, "-", "-"]) + " |")
        reached = "" if target is None else " (to the target: over the runs that reached it)"
        versus = (
            f" {' - '.join(figures)}: the difference of the two means over its standard error, sqrt(s1^2 / n1 + "
            f"s2^2 / n2), below 0 where the first is lower{reached}."
        )
    reaching = (
        "" if target is None else "; (k/n seeds): only k of the n runs reached the target, and the figure is over those"
    )
    lines += [
        "",
        f"Mean ± sample standard deviation over seeds{reaching}.{versus} Cost: the last measurement of each run "
        "(machinery/cost.py: SpikingJelly's counters, compute energy at 4.6 pJ per MAC and 0.9 pJ per AC).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        args.target = solved_return(args.env_id, args.target)
        make_folder_for("--out", args.out, OUTPUTS)  # now, not after training
        run_dirs = found_runs(args) if args.read_only else train_runs(args)
        check_comparable(run_dirs)
        curves, costs = read_curves(run_dirs, args.env_id)
    except UsageError as e:
        return error(e)
    except RunFailed as e:
        return error(e, 1)
    except KeyboardInterrupt:
        print(
            "stopped by SIGINT; the runs it stopped kept their last.pt, and the same command resumes them",
            file=sys.stderr,
        )
        return 128 + signal.SIGINT
    try:
        plot(curves, 0, args, f"{args.out}-steps")
        plot(curves, 1, args, f"{args.out}-time")
        table = summary_table(curves, costs, args.target)
        files.write_text(f"{args.out}.md", table)
    except OSError as e:  # a full disk, say: the runs are saved, and compare.py --read-only redraws them
        return error(f"writing {e.filename or args.out}: {e.strerror or e}; the runs are intact", 1)
    print(table)
    print("written:", ", ".join(args.out + suffix for suffix in OUTPUTS))
    return 0


if __name__ == "__main__":
    sys.exit(main())
