"""Sweeps over the training flags, for one or both agents and several seeds, as Ray Tune trials.

Each trial runs the same training code as Spiking_PPO.py and PPO.py (imported, not copied),
reports every evaluation to Tune, and writes its usual TensorBoard run and checkpoints inside the
Tune storage path, so that `tensorboard --logdir` on that path and compare.py both read a sweep.
Without --address an embedded Ray starts on this machine, sized to its cores; with --address (or
RAY_ADDRESS) the trials run on an existing Ray cluster.

    python sweep.py --grid T=4,8,16 --seeds 3 --agents snn,ann --max-steps 20000
    python sweep.py --space space.yaml --asha                 # a space from a YAML or JSON file
    python sweep.py --grid learning_rate=1e-4,3e-4,1e-3 --grid T=4,8,16 --random 4  # 4 of the 9, at random
    python sweep.py --seeds 10 --max-steps 1e6 --set preset=cleanrl env_id=Hopper-v5  # 10 seeds, one configuration
    python sweep.py --resume sweeps/sweep      # finish a sweep that SIGINT (a Ctrl-C) stopped

Ray is an optional dependency: pip install -r requirements-sweep.txt
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import itertools
import json
import math
import os
import shlex
import shutil
import signal
import socket
import sys
import time
from pathlib import Path

import numpy as np

import PPO
import Spiking_PPO
from machinery import checkpoints, cli, envs, files, presets, resources, run, stats
from machinery.cli import OneLineParser, UsageError, error

AGENTS = {"snn": Spiking_PPO.AGENT, "ann": PPO.AGENT}
ROOT = Path(__file__).resolve().parent
# What a cluster's workers need is the scripts and machinery/; not the environment, runs or outputs.
SHIPPING_EXCLUDES = [".venv/", ".git/", "runs/", "sweeps/", "docs/", "bench/", "tests/", "*.png", "*.svg"]
FIXED = ("seed", "runs_dir", "quiet", "resume", "eval_only", "render", "capture_video", "device")
OWN = {"max_steps": "--max-steps"}  # sweep.py's own flag for every trial, not the space's
CONNECT_ATTEMPTS = 3  # a Ray client's tries to start its session on a cluster (see connect)
# Races of Ray's client server as it starts a session, which the next try does not meet: it lists the
# machine's processes and fails if one of them is a zombie at that moment (a child its parent has not
# reaped yet, anyone's); and the server process it forks for the session can die at once, a race of
# gRPC with fork (ray-project/ray#63202, open: about 7% of sessions there, and twice in this project's CI).
TRANSIENT_SESSION_FAILURES = ("ZombieProcess", "Starting Ray client server failed")
SWEEP_FILE = "sweep.json"  # what a sweep was made with, for --resume
# Tune's logs are tune_logs(), not all it would add, wherever its driver runs (under ray://, on the cluster)
TUNE_ENV = {"TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}
RESUME_MAY_GIVE = ("resume", "address", "num_cpus")  # a resumed sweep's flags are those it was made with


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--grid",
        nargs="*",
        action="extend",
        default=[],
        metavar="FLAG=V1,V2",
        help="values to try for a training flag, by its field name: hidden_size=32,64",
    )
    parser.add_argument("--space", help="a YAML or JSON file mapping flag names to lists of values")
    parser.add_argument("--random", type=int, help="draw this many configurations at random instead of the grid")
    parser.add_argument("--agents", default="snn,ann", help="comma-separated: snn, ann (default: both)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds per configuration, 1..K")
    parser.add_argument("--max-steps", type=int, default=20_000, help="rollout steps per trial")
    parser.add_argument(
        "--set",
        nargs="*",
        action="extend",
        default=[],
        metavar="FLAG=V",
        help="fixed training flags for every trial: env_id=Acrobot-v1",
    )
    parser.add_argument("--asha", action="store_true", help="stop unpromising trials early (ASHA on the eval mean)")
    parser.add_argument(
        "--target",
        type=float,
        help="return that counts as solved (default: the env's reward threshold in its gymnasium spec; "
        "none there: returns alone are compared)",
    )
    parser.add_argument(
        "--address",
        default=os.environ.get("RAY_ADDRESS"),
        help="Ray cluster to run on (default: $RAY_ADDRESS, else a Ray started here)",
    )
    parser.add_argument("--num-cpus", type=int, help="CPUs of the embedded Ray, one trial each (default: all cores)")
    parser.add_argument("--storage-path", default="sweeps", help="where Tune writes the trials")
    parser.add_argument("--name", default="sweep", help="the sweep's directory under --storage-path")
    parser.add_argument(
        "--resume",
        metavar="SWEEP_DIR",
        help="finish the sweep in SWEEP_DIR that SIGINT stopped: its trials that had not finished continue "
        "their runs from their last.pt, those that had keep their results",
    )
    args, extras = parser.parse_known_args(argv)
    classes = [agent.args_cls for agent in AGENTS.values()]
    cli.refuse_unrecognized(extras, classes, "training flags go in --set FLAG=V (every trial) or --grid FLAG=V1,V2")
    if args.resume:  # the sweep's own flags are in its directory; a resume may only say where it runs
        for name, value in vars(args).items():
            if name not in RESUME_MAY_GIVE and value != parser.get_default(name):
                raise UsageError(
                    f"{cli.cli_flag(name)} with --resume: a resumed sweep keeps the flags it was made with"
                )
    cli.check_positive(args, "seeds", "max_steps", "random", "num_cpus")
    if args.num_cpus is not None and args.address:
        raise UsageError("--num-cpus sizes the embedded Ray; a cluster at --address has the CPUs its nodes gave it")
    if args.num_cpus is not None:
        resources.check_cores(args.num_cpus, "--num-cpus")
    return args


def read_space(args: argparse.Namespace) -> dict[str, list[str]]:
    """Flag name (as in the dataclass: hidden_size) -> its values as text, from --grid and --space."""
    space: dict[str, list[str]] = {}
    if args.space:
        path = Path(args.space)
        try:
            text = path.read_text()
        except OSError as e:
            raise UsageError(f"--space {path}: {e.strerror}") from None
        if path.suffix in (".yaml", ".yml"):
            import yaml

            kind, parse, errors = "YAML", yaml.safe_load, yaml.YAMLError
        else:
            kind, parse, errors = "JSON", json.loads, json.JSONDecodeError
        try:
            loaded = parse(text)
        except errors as e:
            raise UsageError(f"--space {path}: not valid {kind}: {cli.one_line(e)}") from None
        if not isinstance(loaded, dict):
            raise UsageError(f"--space {path}: expected a mapping of flag names to lists of values")
        space.update({str(k): [str(v) for v in (vs if isinstance(vs, list) else [vs])] for k, vs in loaded.items()})
    for item in args.grid:
        name, sep, values = item.partition("=")
        if not sep or not values:
            raise UsageError(f"--grid {item!r}: expected FLAG=V1,V2,...")
        name = name.replace("-", "_")
        if name in space:  # the later would silently replace the earlier
            raise UsageError(f"{cli.cli_flag(name)} is in the search space twice: give all its values at once")
        space[name] = [v for v in values.split(",") if v]
    return space


def trial_configs(args: argparse.Namespace) -> list[dict]:
    """Every trial as (agent, seed, flag values), checked like the scripts check their flags."""
    agents = [a.strip() for a in args.agents.split(",") if a.strip()]
    for agent in agents:
        if agent not in AGENTS:
            raise UsageError(f"--agents: unknown agent {agent!r}; choose from snn, ann")
    space, fixed = read_space(args), dict(item.partition("=")[::2] for item in args.set)
    fixed = {k.replace("-", "_"): v for k, v in fixed.items()}
    if not space and args.random:
        raise UsageError("--random draws from a search space: give --grid FLAG=V1,V2 or --space FILE")
    for name, values in space.items():
        if not values:
            raise UsageError(f"empty list of values for {name}")
    known = {name for agent in agents for name in fields_of(agent)}
    for name in [*space, *fixed]:
        if name in OWN:
            raise UsageError(f"{cli.cli_flag(name)} is the same for every trial: give it as sweep.py's {OWN[name]}")
        if name not in known and (owners := [a for a in AGENTS if name in fields_of(a)]):
            raise UsageError(f"{cli.cli_flag(name)} is a flag of {owners[0]} alone, which --agents leaves out")
        if name not in known or name in FIXED:
            raise UsageError(f"unknown or fixed flag {cli.cli_flag(name)} in the search space")
    if both := sorted(set(space) & set(fixed)):
        raise UsageError(f"{cli.cli_flag(both[0])} is both searched and fixed by --set: give it one way")

    names = list(space)
    combos = random_combinations(space, args.random) if args.random else list(itertools.product(*space.values()))
    trials, seen = [], set()
    for agent in agents:
        fields = {f.name: f for f in dataclasses.fields(AGENTS[agent].args_cls)}
        for combo in combos:
            # an agent ignores the flags it does not have (the ANN has no T)
            config = {n: v for n, v in zip(names, combo, strict=True) if n in fields}
            key = (agent, tuple(sorted(config.items())))
            if key in seen:
                continue
            seen.add(key)
            for seed in range(1, args.seeds + 1):
                flags = {**fixed, **config, "max_steps": str(args.max_steps), "seed": str(seed)}
                trials.append({"agent": agent, "seed": seed, "config": config, "flags": flags})
    for trial in trials:  # parse and range-check every trial's flags now, before Ray starts
        cli.validate(trial_args := as_args(trial, "unused"))
        run.check_it_evaluates(trial_args, "sweep.py", "--set eval_interval=N")
    return trials


def fields_of(agent: str) -> set[str]:
    """The flags (by field name) of an agent of --agents."""
    return {f.name for f in dataclasses.fields(AGENTS[agent].args_cls)}


def random_combinations(space: dict[str, list[str]], count: int) -> list[tuple[str, ...]]:
    """`count` distinct combinations of the space's values, drawn at random (seeded: the same each time),
    in the grid's order; without building the grid, which can be too large to list."""
    sizes = [len(values) for values in space.values()]
    if count > (total := math.prod(sizes)):
        raise UsageError(f"--random {count}: the grid has only {total} configurations; leave --random out to run all")
    rng, picked = np.random.default_rng(0), set()
    while len(picked) < count:
        picked.add(int(rng.integers(total)))
    combos = []
    for index in sorted(picked):  # the index in the grid, read digit by digit in mixed radix
        combo = []
        for values, size in zip(reversed(space.values()), reversed(sizes), strict=True):
            index, digit = divmod(index, size)
            combo.append(values[digit])
        combos.append(tuple(reversed(combo)))
    return combos


def sweep_target(args: argparse.Namespace, trials: list[dict]) -> float | None:
    """--target, or the reward threshold that gymnasium's registry gives the trials' env; None where it
    gives none, or where the trials run several envs (no one threshold stands for them all): the
    summary then ranks by return alone."""
    env_ids = sorted({as_args(trial, "unused").env_id for trial in trials})
    if args.target is None and len(env_ids) > 1:
        return None
    return envs.solved_return(env_ids[0], args.target)


def as_args(trial: dict, runs_dir: str) -> Spiking_PPO.Args:
    """The trial's flags as the scripts would parse them, --preset included; a switch is FLAG=true or
    FLAG=false (for --flag or --no-flag)."""
    agent = AGENTS[trial["agent"]]
    fields = {f.name: f for f in dataclasses.fields(agent.args_cls)}
    argv = ["--runs-dir", runs_dir, "--quiet", "--device", "cpu"]
    for name, value in trial["flags"].items():
        if name not in fields or fields[name].type != "bool":  # a flag the agent lacks: its parser says so
            argv += [cli.cli_flag(name), str(value)]
        elif str(value).lower() in cli.SWITCH:
            argv.append(cli.as_written(name, cli.SWITCH[str(value).lower()]))
        else:
            raise UsageError(f"{cli.cli_flag(name)} is a switch: give it as true or false, not {value!r}")
    return presets.resolve(agent.args_cls, argv)


def run_trial(config: dict) -> None:
    """One Tune trial: the scripts' training loop, reporting every evaluation. In a sweep resumed
    (--resume) after a signal, a trial whose run had begun continues it from its last.pt."""
    import torch
    from ray import tune

    torch.set_num_threads(1)  # one core per trial: the trials are the parallelism
    # The run goes straight to the trial's directory in the storage, not to the staging directory
    # Ray copies there while trials run: the copy would meet half-written checkpoints. Tune's own
    # record of where that is follows a sweep moved before --resume.
    trial, runs_dir = config["trial"], Path(tune.get_context().get_storage().trial_fs_path)
    args, agent = as_args(trial, str(runs_dir)), AGENTS[trial["agent"]]
    # What the trial has told Tune, kept beside its run: a resumed trial's reports go on from it
    saved = runs_dir / "reports.json"
    reports = json.loads(saved.read_text()) if saved.exists() else {"first_solved": None, "last": None}

    def on_eval(report: dict) -> None:
        target = trial["target"]
        if target is not None and report["eval_mean"] >= target and reports["first_solved"] is None:
            reports["first_solved"] = {"step": report["step"], "elapsed_seconds": report["elapsed_seconds"]}
        solved = reports["first_solved"] or {"step": math.nan, "elapsed_seconds": math.nan}
        firing_rates = [v for k, v in report.items() if k.startswith("snn/firing_rate/")]
        reports["last"] = {
            **report,
            "steps_to_target": solved["step"],
            "seconds_to_target": solved["elapsed_seconds"],
            "firing_rate": float(np.mean(firing_rates)) if firing_rates else math.nan,
        }
        files.write_text(saved, json.dumps(reports, default=float))
        tune.report(reports["last"])

    resume_from, earlier = None, checkpoints.earlier_run(agent, args)
    if earlier is not None:
        if earlier.resumed is None:  # it ended, but the signal came before Tune heard the trial end
            if reports["last"] is not None:  # (a run shorter than --eval-interval reports nothing)
                tune.report(reports["last"])
            return
        args, resume_from = earlier.resumed
    Spiking_PPO.train(args, agent, resume_from, on_eval=on_eval)


METRICS = ("eval_mean", "steps_to_target", "seconds_to_target", "firing_rate")


def trial_outcomes(grid, trials: list[dict]) -> tuple[list[dict], bool]:
    """Each trial's status ("ok", "stopped" early or "failed") and last reported metrics, in the order
    of `trials`, from Ray Tune's results; and whether a Ctrl-C interrupted any of them."""

    def key(trial: dict) -> str:
        return json.dumps([trial["agent"], trial["seed"], trial["config"]], sort_keys=True)

    by_trial, interrupted = {}, False
    for result in grid:
        if result.config is None:  # no metrics, not even the config a started trial has: it never started,
            interrupted |= result.error is None  # a Ctrl-C came first; it is the trial no result accounts for
            continue
        trial, metrics = result.config["trial"], result.metrics
        # a trial a Ctrl-C stopped has no report marked done (ASHA's stopped ones do)
        interrupted |= result.error is None and not metrics.get("done", False)
        if result.error is not None:
            status = "failed"
        else:
            status = "ok" if "eval_mean" in metrics and ran_to_its_end(trial, metrics) else "stopped"
        by_trial[key(trial)] = {"status": status} | {name: metrics.get(name, math.nan) for name in METRICS}
    never_started = {"status": "stopped"} | dict.fromkeys(METRICS, math.nan)
    return [by_trial.get(key(trial), never_started) for trial in trials], interrupted


def ran_to_its_end(trial: dict, metrics: dict) -> bool:
    """Whether a trial's last report is its run's last evaluation (or the one that reached
    --stop-at-return): ASHA stops a trial after an earlier one, whose return is not a final one."""
    args = as_args(trial, "unused")
    target = args.stop_at_return
    return metrics["step"] >= run.last_evaluation(args) or (target is not None and metrics["eval_mean"] >= target)


def over(done: list[dict], key: str, scale: float = 1.0) -> str:
    """Mean [interval] of `key` over the trials that ran to their end; "-" where none did (nothing to
    average: not "not reached", which says the target was missed)."""
    return stats.mean_interval([m[key] * scale for m in done]) if done else "-"


def summarize(trials: list[dict], results: list[dict], out: Path, target: float | None) -> str:
    """Per configuration and agent: final return, time to target (where there is one), firing rate;
    written as summary.csv and summary.md in `out`, the Markdown returned."""
    rows = summary_rows(trials, results)
    files.write_text(out / "summary.csv", summary_csv(rows, target))
    table = summary_markdown(rows, target)
    files.write_text(out / "summary.md", table)
    return table


def summary_rows(trials: list[dict], results: list[dict]) -> list[dict]:
    """A row per agent and configuration, its trials' results over seeds; the keys that start with
    "_" are for ranking, not for showing."""
    groups: dict[tuple, list[dict]] = {}
    for trial, result in zip(trials, results, strict=True):
        key = (trial["agent"], json.dumps(trial["config"], sort_keys=True))
        groups.setdefault(key, []).append({**result, "seed": trial["seed"]})
    rows = []
    for (agent, config), members in groups.items():
        done = [m for m in members if m["status"] == "ok"]
        finals, steps = [m["eval_mean"] for m in done], [m["steps_to_target"] for m in done]
        rows.append(
            {
                "agent": agent,
                "config": config,
                "seeds": len(members),
                "failed": sum(m["status"] == "failed" for m in members),
                "stopped_early": sum(m["status"] == "stopped" for m in members),
                "final_return": over(done, "eval_mean"),
                "steps_to_target": over(done, "steps_to_target"),
                "seconds_to_target": over(done, "seconds_to_target"),
                "firing_rate": over(done, "firing_rate", 100) if agent == "snn" else "",
                "_finals": finals,
                # best: highest mean final return, then more seeds reaching the target, then fewer steps to it
                "_rank": (
                    round(float(np.mean(finals)), 6) if finals else -math.inf,
                    len(stats.reached(steps)),
                    -float(np.mean(stats.reached(steps))) if stats.reached(steps) else -math.inf,
                ),
            }
        )
    return rows


def summary_csv(rows: list[dict], target: float | None) -> str:
    """The rows as CSV, without the ranking keys, and without steps and seconds to a target where there is none."""
    columns = [c for c in rows[0] if not c.startswith("_") and (target is not None or not c.endswith("_to_target"))]
    text = io.StringIO(newline="")
    writer = csv.DictWriter(text, columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return text.getvalue()


def summary_markdown(rows: list[dict], target: float | None) -> str:
    """The rows as a table, the best configuration of each agent, and what the figures mean."""
    stopped = any(r["stopped_early"] for r in rows)  # a column only where there were any (--asha)
    header = ["agent", "configuration", "seeds", "failed", *["stopped early"] * stopped, "final eval return"]
    keys = ["seeds", "failed", *["stopped_early"] * stopped, "final_return"]
    if target is not None:
        header += [f"rollout steps to {target:g}", f"seconds to {target:g}"]
        keys += ["steps_to_target", "seconds_to_target"]
    header += ["hidden firing rate (%)"]
    lines = ["| " + " | ".join(header) + " |", "|---|---|" + "---:|" * (len(header) - 2)]
    lines += [
        f"| {r['agent']} | `{r['config']}` | " + " | ".join(str(r[k]) for k in keys) + f" | {r['firing_rate']} |"
        for r in rows
    ]
    lines += [
        "",
        *best_configurations(rows, target),
        f"Mean [interval] over seeds; the interval is the {stats.interval_kind(min(r['seeds'] for r in rows))}. "
        + (
            "(k/n seeds): only k of the n seeds reached the target, and the figure is over those. "
            if target is not None
            else ""
        )
        + "Failed trials are left out"
        + (
            ", and so are those stopped before their end (by ASHA or a Ctrl-C): their last return is not a final one."
            if stopped
            else "."
        ),
    ]
    return "\n".join(lines) + "\n"


def best_configurations(rows: list[dict], target: float | None) -> list[str]:
    """A line naming each agent's best configuration (and every one tied with it), and how far its
    mean final return lies above the next best's for their spread over seeds: SNN against ANN is
    what a sweep of both agents is for, and the ANN's best alone would hide the spiking agent's."""
    agents = list(dict.fromkeys(r["agent"] for r in rows))
    lines = []
    for agent in agents:
        top = max(r["_rank"] for r in rows if r["agent"] == agent)
        if top[0] == -math.inf:  # none of its trials ran to its end
            lines.append(
                f"No trial{f' of {agent}' if len(agents) > 1 else ''} ran to its end: no configuration to call best."
            )
            continue
        best = [r for r in rows if r["agent"] == agent and r["_rank"] == top]
        names = " and ".join(f"{r['agent']} `{r['config']}`" for r in best)
        reached = "" if target is None else f", rollout steps to {target:g} {best[0]['steps_to_target']}"
        lines.append(
            f"Best configuration{' (a tie)' if len(best) > 1 else ''}: {names} (final eval return "
            f"{best[0]['final_return']}{reached}){beside_next_best(best[0], rows)}."
        )
    return lines


def beside_next_best(best: dict, rows: list[dict]) -> str:
    """How many standard errors the best's mean final return lies above the next best configuration's
    of the same agent (a sweep's pick over few seeds may be luck), or '' where there is none."""
    others = [r for r in rows if r["agent"] == best["agent"] and r["_finals"] and r["_rank"] < best["_rank"]]
    if not others:
        return ""
    runner_up = max(others, key=lambda r: r["_rank"])
    next_best = f"the next best, `{runner_up['config']}` ({runner_up['final_return']})"
    if best["_rank"][0] == runner_up["_rank"][0]:
        return f"; level in final return with {next_best}, ahead of it in reaching the target"
    z = stats.standard_errors_apart(best["_finals"], runner_up["_finals"])
    if math.isnan(z):
        return f"; {next_best}: too few seeds (one of either) to measure the difference in standard errors"
    if math.isinf(z):
        return f"; {next_best}: neither spreads over its seeds, no standard error to measure the difference by"
    return f"; {z:.1f} standard errors of the difference (Welch's) above {next_best}"


def cannot_start(args: argparse.Namespace, out: Path, message: str) -> int:
    """A sweep that cannot start: its error, exit status 2, and no directory left of a new sweep (a
    resumed one keeps its own)."""
    print(f"error: {message}", file=sys.stderr)
    if not args.resume:
        shutil.rmtree(out, ignore_errors=True)
    return 2


def connection_failure(e: BaseException) -> str:
    """A failed connection in one line. A Ray client whose server failed to start its session gets
    the server's traceback as the message ("Initialization failure from server:" and the traceback),
    whose last line says what failed: that line is kept too."""
    lines = str(e).strip().splitlines()
    return cli.one_line(e) + (f" ... {lines[-1].strip()}" if len(lines) > 1 else "")


def connect(ray, args: argparse.Namespace) -> None:
    """An embedded Ray on this machine, or the cluster at --address with the project's code shipped.

    A cluster's workers do not have this repository: its code goes to them as the job's working
    directory (Ray's runtime environment), for both address forms (HOST:PORT, ray://HOST:10001).
    """
    if not args.address:  # "local": a Ray of its own, even where `ray start` runs one on this machine
        cpus = args.num_cpus or os.cpu_count()
        ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        return
    host, _, port = args.address.removeprefix("ray://").rpartition(":")
    try:  # Ray itself retries an address where nothing answers for many minutes
        socket.create_connection((host, int(port)), timeout=10).close()
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers at {host}:{port} ({getattr(e, 'strerror', None) or e})") from None
    code = {"working_dir": str(ROOT), "excludes": SHIPPING_EXCLUDES, "env_vars": TUNE_ENV}
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            ray.init(address=args.address, runtime_env=code, log_to_driver=False)
            return
        except ConnectionAbortedError as e:  # a session the client server failed to start
            transient = any(failure in str(e) for failure in TRANSIENT_SESSION_FAILURES)
            if not transient or attempt == CONNECT_ATTEMPTS - 1:  # anything else is not retried
                raise
            ray.shutdown()
            time.sleep(1.0)


def choose_token_mode(args: argparse.Namespace) -> None:
    """Token authentication, decided before Ray is imported (it reads RAY_AUTH_MODE then); RAY_AUTH_MODE,
    if set, decides instead. The Ray a sweep starts here uses tokens: ray.init would turn them on
    anyway, but with a warning on every sweep unless the mode is set. A client of a cluster sends its
    token only in token mode, and a head started with `ray start` turns tokens on when a token file
    exists (~/.ray/auth_token, left by any earlier ray.init on that machine): so token mode wherever a
    token is found."""
    if "RAY_AUTH_MODE" in os.environ:
        return
    token_file = Path(os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token"))
    if not args.address or "RAY_AUTH_TOKEN" in os.environ or token_file.exists():
        os.environ["RAY_AUTH_MODE"] = "token"


def new_sweep(args: argparse.Namespace) -> tuple[Path, list[dict]]:
    """The new sweep's directory, made now (before Ray starts; an earlier sweep of the same name keeps
    its folder, and this one gets name-1), holding its trials and target for --resume; and its trials."""
    trials = trial_configs(args)
    args.target = sweep_target(args, trials)
    out = run.new_folder(Path(args.storage_path).resolve() / args.name, f"--storage-path {args.storage_path}")
    files.write_text(out / SWEEP_FILE, json.dumps(vars(args) | {"trials": trials}))
    return out, trials


def resumed_sweep(args: argparse.Namespace) -> tuple[Path, list[dict]]:
    """--resume: the sweep's directory and its trials, as `new_sweep` left them."""
    out = Path(args.resume).resolve()
    try:
        made = json.loads((out / SWEEP_FILE).read_text())
    except (OSError, json.JSONDecodeError):
        raise UsageError(
            f"--resume {args.resume}: not the directory of a sweep (it has no readable {SWEEP_FILE})"
        ) from None
    args.target = made["target"]
    return out, made["trials"]


def new_tuner(tune, trainable, args: argparse.Namespace, out: Path, trials: list[dict]):
    """Ray Tune's run of the trials, with ASHA if --asha asks for it; its record goes to `out`."""
    scheduler = None
    if args.asha:
        scheduler = tune.schedulers.ASHAScheduler(time_attr="step", max_t=args.max_steps, grace_period=1)
    return tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search([{**t, "target": args.target} for t in trials])},
        tune_config=tune.TuneConfig(metric="eval_mean", mode="max", scheduler=scheduler),
        run_config=tune.RunConfig(name=out.name, storage_path=str(out.parent), verbose=0, callbacks=tune_logs()),
    )


def tune_logs() -> list:
    """Ray Tune's logs of each trial's reports (its CSV and JSON), kept in the sweep's record, so that a
    resumed sweep has them too. Not its TensorBoard log, which TUNE_ENV turns off: each trial's run writes
    its own TensorBoard run, which Tune's would stand beside under a second name, and Tune would point
    `tensorboard` at a directory of Ray's session that holds none of the sweep's runs."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
        out, trials = resumed_sweep(args) if args.resume else new_sweep(args)
        # one driver per sweep: a --resume started twice would restore the same trials and run them twice
        lock = run.hold_lock(out / ".lock", f"{out} is in use")
    except UsageError as e:
        return error(e)
    with lock:
        return run_sweep(args, out, trials)


def run_sweep(args: argparse.Namespace, out: Path, trials: list[dict]) -> int:
    """The sweep's trials on Ray Tune (a new sweep's or the rest of a resumed one), then its summary."""
    choose_token_mode(args)
    try:
        import ray
        from ray import tune
    except ImportError:
        return cannot_start(args, out, "Ray is not installed: pip install -r requirements-sweep.txt")
    if args.resume and not tune.Tuner.can_restore(out):
        return cannot_start(
            args, out, f"--resume {args.resume}: Ray Tune's record of the sweep is not there (it stopped before "
            "Tune began): start the sweep anew",
        )  # fmt: skip
    try:
        connect(ray, args)
    except (ConnectionError, RuntimeError, ValueError) as e:  # no cluster there, or it refused us
        where = f"--address {args.address}: cannot connect to a Ray cluster there ({connection_failure(e)})"
        return cannot_start(args, out, where)
    print(f"{len(trials)} trials, {'resumed in' if args.resume else 'written to'} {out}", flush=True)
    trainable = tune.with_resources(run_trial, {"cpu": 1})
    os.environ.update(TUNE_ENV)
    grid = (
        tune.Tuner.restore(str(out), trainable) if args.resume else new_tuner(tune, trainable, args, out, trials)
    ).fit()  # a Ctrl-C ends it early, Ray Tune saving what the trials reported so far
    results, interrupted = trial_outcomes(grid, trials)
    ray.shutdown()
    for stray in out.rglob("*.tmp"):  # the checkpoint write of a trial stopped mid-way
        stray.unlink()
    print(summarize(trials, results, out, args.target))
    print(f"written: {out}/summary.md, {out}/summary.csv; tensorboard --logdir {shlex.quote(str(out))}")
    if interrupted:
        print(
            "stopped by SIGINT; the summary covers the trials as they stood; "
            f"resume with: python sweep.py --resume {shlex.quote(str(out))}",
            file=sys.stderr,
        )
        return 128 + signal.SIGINT
    if all(r["status"] == "failed" for r in results):
        return error(f"every trial failed; each one's error.txt under {out} says why", 1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
