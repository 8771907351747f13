"""What a script's command line asks for, and how it ends: the scripts' `main`.

One invocation trains (a new run, or `--resume` of an interrupted or a finished one), replays a
checkpoint (`--eval-only`) or exports one (`--export-nir`). Whatever happens becomes an exit status: 0 done,
2 bad input (one line, no traceback, nothing written), 1 a diverged run or a failing disk, and
128 + the signal number when a signal stopped training (with the command that resumes it).
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import shlex
import signal
import sys
import warnings
from collections.abc import Callable

from machinery import checkpoints, presets
from machinery.checkpoints import CheckpointError
from machinery.cli import UsageError, build_parser, error, flags_of, given_flags, parse_args, refuse_unrecognized
from machinery.nir_export import export_checkpoint
from machinery.replay import replay
from machinery.run import Agent, TrainingDiverged, last_step


def main(agent: Agent, argv: list[str] | None, train: Callable[..., dict], evaluate: Callable) -> int:
    """Run the command line `argv` (sys.argv's by default) with the script's `train` and `evaluate`."""
    # The tutorial's env is CartPole-v0 on purpose; gymnasium's advice to move to v1 is noise here.
    warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
    try:
        args = parse_args_naming_the_twin(agent, argv)
        given = given_flags(agent.args_cls, argv)
        if args.eval_only:
            replay(args, agent, given, evaluate)
            return 0
        if getattr(args, "export_nir", None):
            graph, its_input = export_checkpoint(args.export_nir, agent)
            print(f"written: {graph}; its input: {its_input}")
            return 0
        resume_from = None
        if args.resume:
            args, resume_from = checkpoints.resume_args(args, agent, given)
            note_if_the_schedule_moves(args, resume_from["args"])
        else:
            args = presets.with_preset(args, given)
        return exit_status(train(args, agent, resume_from), agent.script)
    except (UsageError, CheckpointError) as e:
        return error(e)
    except TrainingDiverged as e:
        return error(e, 1)
    except KeyboardInterrupt:  # Ctrl-C in a replay or an export (training handles its signals itself)
        print("stopped by SIGINT", file=sys.stderr)
        return 128 + signal.SIGINT
    except OSError as e:  # a full or failing disk: what was saved before is whole (written atomically)
        where = f"{e.filename}: " if e.filename else "writing the run's files: "
        return error(f"{where}{e.strerror or e}; files saved before it are intact", 1)


TWINS = {"Spiking_PPO": "PPO", "PPO": "Spiking_PPO"}  # each agent's script and the other's


def parse_args_naming_the_twin(agent: Agent, argv: list[str] | None):
    """`parse_args`, whose error for flags that only the other agent has (--T given to PPO.py) names
    the script that takes them: the two scripts share every other flag, so this is the usual slip,
    and argparse's "unrecognized arguments" would not say whose they are."""
    try:
        return parse_args(agent.args_cls, argv, agent.description)
    except UsageError:
        refuse_the_twins_flags(agent, argv)
        raise


def refuse_the_twins_flags(agent: Agent, argv: list[str] | None) -> None:
    """A UsageError naming the flags of argv that are the other agent's, if any are."""
    try:
        extras = build_parser(agent.args_cls, "", defaults=False).parse_known_args(argv)[1]
    except UsageError:  # a bad value, which parse_args's error names
        return
    if not extras or agent.script not in TWINS:
        return
    twin = importlib.import_module(TWINS[agent.script]).AGENT  # loaded only for this message
    theirs = [flag for flag in (token.split("=", 1)[0] for token in extras) if flag in flags_of(twin.args_cls)]
    whose = "is a flag" if len(theirs) == 1 else "are flags"
    refuse_unrecognized(
        extras, [twin.args_cls], f"{' '.join(theirs)} {whose} of {twin.script}.py, not of {agent.script}.py"
    )


def note_if_the_schedule_moves(args, saved: dict) -> None:
    """A line on stderr where a resumed run with --anneal-lr was given another --max-steps: its
    learning rate goes on as in a run of the new length, which does not reach 0 where the old did
    (a finished run trained further goes on from a rate well above the near-0 one it ended at)."""
    before = last_step(dataclasses.replace(args, max_steps=saved["max_steps"]))
    if args.anneal_lr and last_step(args) != before:
        print(
            f"note: --anneal-lr: the learning rate now decays to 0 at step {last_step(args)}, not {before}, as in a "
            f"run of --max-steps {args.max_steps} from its start",
            file=sys.stderr,
        )


def exit_status(summary: dict, script: str) -> int:
    """Print how a training session ended; its exit status (128 + the signal that stopped it)."""
    if summary["signal"] is not None:
        name, run_dir = signal.Signals(summary["signal"]).name, summary["run_dir"]
        print(
            f"stopped by {name} at step {summary['steps']}; {run_dir}/last.pt holds step {summary['saved_step']}; "
            f"resume with: python {script}.py --resume {shlex.quote(str(run_dir))}"  # a command to paste
        )
        return 128 + summary["signal"]
    # a run shorter than --eval-interval evaluates nothing (benchmarks of the loop alone ask for that)
    best = "no evaluation" if summary["best"] == -math.inf else f"best eval return {summary['best']:.2f}"
    steps, start, seconds = summary["steps"], summary["start_step"], f"{summary['seconds']:.1f} s"
    took = f"(resumed at step {start}; {steps - start} in {seconds})" if start else f"in {seconds}"
    print(f"done: {steps} steps {took}, {best}; run directory {summary['run_dir']}")
    return 0
