"""The command line: hyperparameter dataclasses become flags, checked, with one-line errors.

A field made with `flag(default, help, check, choices)` is a flag `--field-name` with that help
text, type and range. `parse_args` turns argv into the dataclass and refuses bad input with a
`UsageError`, which the scripts print as one line (`error`) and exit 2; `flags_for_each` shares
one command line out among both agents (compare.py). Used by Spiking_PPO.py, PPO.py, compare.py,
sweep.py and bench/. It knows nothing of training, networks or environments.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import operator
import os
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import field
from pathlib import Path
from typing import Any

from machinery import files


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


def flag(default: Any, help: str, check: str | None = None, choices: tuple | None = None, metavar: str | None = None):
    """A dataclass field that is also a command-line flag; `check` names its valid range (CHECKS)."""
    return field(default=default, metadata={"help": help, "check": check, "choices": choices, "metavar": metavar})


CHECKS: dict[str, tuple[Callable[[float], bool], str]] = {
    "positive": (lambda x: math.isfinite(x) and x > 0, "{number} > 0"),
    "nonnegative": (lambda x: math.isfinite(x) and x >= 0, "{number} >= 0"),
    "unit_interval": (lambda x: 0 <= x <= 1, "in [0, 1]"),
    "finite": (lambda x: math.isfinite(x), "finite"),
    "seed": (lambda x: 0 <= x < 2**32, "in [0, 2**32 - 1] (numpy's seeds)"),
    "time_constant": (lambda x: math.isfinite(x) and x >= 1, "{number} >= 1 (a decay per step in [0, 1))"),
}


def float_or_none(text: str) -> float | None:
    """An optional number's flag: `none` unsets it, as after a preset that sets it (--max-grad-norm none)."""
    return None if text.strip().lower() == "none" else float(text)


float_or_none.__name__ = "float (or none)"  # argparse's "invalid float (or none) value: 'x'"


def integer(text: str) -> int:
    """An integer flag's value, as int reads it (1000000, 1_000_000) or as a whole number in a float's
    notation (1e6: step counts are written so, as in CleanRL's and the papers' tables)."""
    try:
        return int(text)
    except ValueError:
        number = float(text)  # a word: ValueError, which argparse reports as "invalid integer value"
        if not number.is_integer():
            raise ValueError(text) from None
        return int(number)


TYPES = {"int": int, "float": float, "str": str, "float | None": float_or_none, "str | None": str}


def must_be(check: str, type_name: str) -> str:
    """What a flag's value must be, in words: "an integer > 0" for an int flag, "a finite number > 0"
    for a float one."""
    return CHECKS[check][1].format(number="an integer" if type_name == "int" else "a finite number")


def error(message: object, status: int = 2) -> int:
    """Say what stopped a tool in one line on stderr, `error: message`, and give back its exit status
    (2, bad input, unless said otherwise): every script's and tool's main ends a failure so."""
    print(f"error: {message}", file=sys.stderr)
    return status


def one_line(e: BaseException) -> str:
    """An exception as "Type: its first line", for the one-line errors every tool prints."""
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


def cli_flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_positive(args: Any, *names: str) -> None:
    """A UsageError naming the first of the tools' count flags `names` (attributes of `args`) that
    was given and is not > 0 (seeds, runs, workers, steps: none of them makes sense at 0)."""
    for name in names:
        value = getattr(args, name)
        if value is not None and value <= 0:
            raise UsageError(f"{cli_flag(name)} must be an integer > 0, got {value}")


class DefaultsFormatter(argparse.HelpFormatter):
    """--help, with each option's default after its help where it has one worth saying (not None, False
    or empty) and the help does not already say it (argparse's own formatter adds "(default: None)")."""

    def _get_help_string(self, action):
        text, default = action.help or "", action.default
        if not action.option_strings or "(default" in text or default in (None, argparse.SUPPRESS):
            return text
        if default is False or (isinstance(default, list | tuple) and not default):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, list | tuple) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


class OneLineParser(argparse.ArgumentParser):
    """argparse, with errors raised as UsageError instead of printing usage and exiting, negative
    numbers in any float form taken as values (argparse 3.11 takes "--target -1e3" for a flag -1e3),
    and no abbreviated flags: argparse would take the tools' `--target` given to a training script for
    its `--target-kl`, and train with the KL stop that the user never asked for. An int flag takes any
    spelling of a whole number (`integer`: --max-steps 1e6); --help shows the defaults (`DefaultsFormatter`)."""

    NEGATIVE_NUMBER = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$|^-(inf|infinity|nan)$", re.IGNORECASE)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", DefaultsFormatter)
        super().__init__(*args, allow_abbrev=False, **kwargs)
        self._negative_number_matcher = self.NEGATIVE_NUMBER  # what argparse tells a value from a flag by

    def add_argument(self, *args, **kwargs):
        if kwargs.get("type") is int:
            kwargs["type"] = integer
        return super().add_argument(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(message)


def build_parser(args_cls: type, description: str, defaults: bool = True) -> OneLineParser:
    """The command line of `args_cls`; without defaults, parsing yields only the flags given."""
    parser = OneLineParser(description=description)
    for f in dataclasses.fields(args_cls):
        default = f.default if defaults else argparse.SUPPRESS
        meta = f.metadata
        if f.type == "bool":  # a training switch also has --no-<name>, to turn off what a preset turned on
            action = "store_true" if f.name in getattr(args_cls, "ACTION_FLAGS", ()) else argparse.BooleanOptionalAction
            parser.add_argument(cli_flag(f.name), action=action, default=default, help=meta["help"])
            continue
        parser.add_argument(
            cli_flag(f.name),
            type=TYPES[f.type],
            default=default,
            help=meta["help"] + ("; none unsets it" if TYPES[f.type] is float_or_none else ""),
            choices=meta["choices"],
            metavar=meta["metavar"],
        )
    return parser


def parse_args(args_cls: type, argv: list[str] | None = None, description: str = "") -> Any:
    """argv -> a checked instance of `args_cls`, or a UsageError."""
    args = args_cls(**vars(build_parser(args_cls, description).parse_args(argv)))
    validate(args, rollout=False)  # --preset may still set --num-envs, --num-steps, --mini-batch-size
    return args


def given_flags(args_cls: type, argv: list[str] | None = None) -> set[str]:
    """The fields whose flags appear in argv (to tell a default from a choice)."""
    return set(vars(build_parser(args_cls, "", defaults=False).parse_args(argv)))


def flags_for_each(flags: list[str], args_classes: dict[str, type]) -> dict[str, list[str]]:
    """`flags` (one command line for several agents) shared out: each agent gets, in their order,
    those its args class has, so that an SNN-only flag (--T) goes to the SNN alone. A flag that no
    agent has, or a value its flag refuses, is a UsageError."""
    unknown = {
        name: build_parser(cls, "", defaults=False).parse_known_args(flags)[1] for name, cls in args_classes.items()
    }
    nobodys = functools.reduce(operator.and_, (Counter(tokens) for tokens in unknown.values()))
    if nobodys:
        named = [token for token in nobodys if token.startswith("--")] or list(nobodys)  # the flags, not values
        raise UsageError(f"unrecognized arguments: {' '.join(named)} (no agent has them)")
    return {name: without(flags, tokens) for name, tokens in unknown.items()}


def as_written(name: str, value: Any, with_flag: bool = True) -> str:
    """A flag's value as a command line gives it: --norm-adv or --no-norm-adv for a switch, and
    (after the flag, `with_flag`) none for an optional number unset, the value itself for the others."""
    if isinstance(value, bool):
        return cli_flag(name) if value else "--no-" + cli_flag(name)[2:]
    written = "none" if value is None else str(value)
    return f"{cli_flag(name)} {written}" if with_flag else written


SWITCH = {"true": True, "1": True, "false": False, "0": False}  # a switch's value, written (sweep.py, --select)


def is_written(value: Any, text: str) -> bool:
    """Whether `text`, a FLAG=VALUE's value as the tools take it (sweep.py's --grid and --set,
    compare.py's --select), is `value`: a switch as true or false, an optional number unset as none,
    a number in any spelling (3e-4 is 0.0003)."""
    if isinstance(value, bool):
        return SWITCH.get(text.lower()) is value
    if value is None or isinstance(value, int | float):
        try:
            return float_or_none(text) == value
        except ValueError:
            return False
    return str(value) == text


def flags_of(args_cls: type) -> set[str]:
    """Every flag of `args_cls`'s command line, a switch's --no- form included."""
    names = {cli_flag(f.name) for f in dataclasses.fields(args_cls)}
    switches = {cli_flag(f.name) for f in dataclasses.fields(args_cls) if f.type == "bool"}
    return names | {"--no-" + flag[2:] for flag in switches}


def refuse_unrecognized(extras: list[str], args_classes: list[type], where_they_go: str) -> None:
    """A tool's command line (compare.py, sweep.py) with tokens it does not know: a UsageError naming them,
    and, where one is a training script's flag, where on the tool's command line training flags go."""
    if not extras:
        return
    training = any(t.split("=", 1)[0] in flags_of(cls) for t in extras for cls in args_classes)
    raise UsageError(f"unrecognized arguments: {' '.join(extras)}" + (f"; {where_they_go}" if training else ""))


def without(tokens: list[str], left_out: list[str]) -> list[str]:
    """`tokens` less `left_out`, a subsequence of them (argparse's unrecognized arguments: each
    begins with its flag, which anchors the values after it)."""
    kept, rest = [], iter(left_out)
    next_out = next(rest, None)
    for token in tokens:
        if token == next_out:
            next_out = next(rest, None)
        else:
            kept.append(token)
    return kept


def make_folder(folder: Path, flag: str) -> None:
    """Create `folder` and its parents for the output `flag` names, or a UsageError saying why it
    cannot be written: checked before a tool trains anything, not when it writes at the end."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{flag}: {folder} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"{flag}: cannot create {folder} ({e.strerror})") from None
    if not os.access(folder, os.W_OK):
        raise UsageError(f"{flag}: {folder} is not writable")


def make_folder_for(flag: str, path: str | Path, suffixes: tuple[str, ...] = ("",), keys: tuple[str, ...] = ()) -> None:
    """`make_folder` for the folder of the output `flag` names: `path` a file, or with `suffixes` the
    prefix of the files path + suffix; and a UsageError if one of those files is a folder, or a file
    the output must not replace (`files.why_not_replace`, with the `keys` a JSON the tool adds to has)."""
    make_folder(Path(path).parent, f"{flag} {path}")
    for name in (f"{path}{suffix}" for suffix in suffixes):
        if Path(name).is_dir():
            raise UsageError(f"{flag} {path}: {name} is a folder; name a file to write")
        if why := files.why_not_replace(name, keys):
            raise UsageError(f"{flag} {path}: {name} exists and {why}; name another file, or move that one away")


def apply_preset(args: Any, values: dict[str, Any], given: set[str]) -> Any:
    """args with a preset's values in place of the defaults of every flag not given, checked again.
    A value for a flag that args lacks (the SNN's --readout-tau, for the ANN) is not for this agent."""
    fields = {f.name for f in dataclasses.fields(args)}
    args = dataclasses.replace(args, **{k: v for k, v in values.items() if k in fields and k not in given})
    validate(args)
    return args


def hyperparameters(args: Any) -> dict:
    """The arguments a run keeps: those that say how to train, not what to do now (ACTION_FLAGS)."""
    return {k: v for k, v in dataclasses.asdict(args).items() if k not in args.ACTION_FLAGS}


def validate(args: Any, rollout: bool = True) -> None:
    """Each field against its declared range, then the checks that involve several flags (with
    `rollout`, the mini-batch against the rollout, once a preset has given them their values)."""
    for f in dataclasses.fields(args):
        value, check = getattr(args, f.name), f.metadata["check"]
        if check and value is not None and not CHECKS[check][0](value):
            raise UsageError(f"{cli_flag(f.name)} must be {must_be(check, f.type)}, got {value}")
    batch = args.num_envs * args.num_steps
    if rollout and args.mini_batch_size > batch:
        raise UsageError(
            f"--mini-batch-size {args.mini_batch_size} is larger than a rollout "
            f"(--num-envs x --num-steps = {batch}); lower it or collect more steps"
        )
    if rollout and args.norm_adv and args.mini_batch_size < 2:  # a preset may have turned --norm-adv on
        raise UsageError(
            f"--mini-batch-size {args.mini_batch_size} with --norm-adv: one sample has no standard deviation to "
            "normalize its advantage by; give --mini-batch-size 2 or more, or --no-norm-adv"
        )
    if args.device not in ("auto", "cpu") and not args.device.startswith("cuda"):
        raise UsageError(f"--device must be cpu, cuda or auto, got {args.device!r}")
    if args.device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UsageError("--device cuda asked for, but no CUDA device is available; use --device cpu")
    if args.compile and getattr(args, "snn_impl", "fast") == "reference":
        raise UsageError(
            "--compile compiles the fast path, and --snn-impl reference calls the neurons step by step: leave "
            "one of them out"
        )
    if getattr(args, "report", None) and not args.eval_only:
        raise UsageError("--report writes what a replay measured: use it with --eval-only CHECKPOINT")
    if (args.render or args.capture_video or args.mean_action) and not args.eval_only:
        raise UsageError(
            "--render, --capture-video and --mean-action replay a checkpoint: use them with --eval-only CHECKPOINT"
        )
    if args.render and sys.platform.startswith("linux") and not os.environ.get("DISPLAY"):
        raise UsageError("--render needs a display and none is set (DISPLAY); use --capture-video instead")
