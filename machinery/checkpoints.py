"""Checkpoints: plain data on disk, written atomically, read without running code.

A checkpoint is a dict of tensors, numbers, strings, lists, tuples and dicts, so that it loads
with `torch.load(path, weights_only=True)`: loading one never runs code, whoever made the file.
numpy arrays and scalars (env states, RNG states) are stored as tagged tensors and come back as
numpy (`to_data` / `from_data`). `best.pt` holds what replay and sharing need (weights, arguments,
env, step, eval mean, observation normalization statistics); `last.pt` adds what exact resume needs
(optimizer, RNG states, counters, the partial rollout, the envs' states, normalization included).
This module knows the format, not how training uses it; `load_agent` and `agent_env` give a
checkpoint's network and the env whose observations it was trained on, for use outside training.
"""

from __future__ import annotations

import dataclasses
import io
import pickle
import pickletools
import random
import shlex
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch

from machinery.cli import as_written, cli_flag, hyperparameters, validate
from machinery.envs import Normalization, make_normalized, obs_statistics, running_mean_std
from machinery.files import write_atomically

FORMAT = 2  # 1: the pickled objects of earlier versions, refused
BEST_KEYS = ("format", "agent", "env_id", "obs_dim", "num_actions", "args", "model", "step", "eval_mean")
LAST_KEYS = ("optimizer", "rng", "updates", "best", "elapsed_seconds", "rollout", "envs", "obs")


WHAT_TO_GIVE = "give a best.pt or last.pt from a run directory of these scripts"


class CheckpointError(Exception):
    """A checkpoint that cannot be used: reported in one line, exit status 2."""


class RunComplete(CheckpointError):
    """--resume of a run that has nothing left to train: it reached --max-steps or --stop-at-return."""


TENSOR_KINDS = "biufc"  # numpy's bool, integer and float kinds, whose arrays torch holds as they are


def to_data(obj: Any) -> Any:
    """obj with numpy arrays and scalars turned into tagged tensors; a TypeError for anything else
    that is not plain data."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, np.ndarray | np.generic) and obj.dtype.kind not in TENSOR_KINDS + "O":
        return bytes_of(np.asarray(obj))
    if isinstance(obj, np.ndarray):
        return {"__ndarray__": torch.from_numpy(np.ascontiguousarray(obj).copy())}
    if isinstance(obj, np.generic):
        return {"__numpy_scalar__": torch.from_numpy(np.asarray(obj).reshape(1))}
    if isinstance(obj, dict):
        return {key: to_data(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(to_data(value) for value in obj)
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    raise TypeError(f"not plain data: {type(obj).__name__}")


def bytes_of(array: np.ndarray) -> dict:
    """An array or scalar of a kind torch has no tensor for (strings, bytes, dates, records: FrozenLake's
    map is an array of bytes) as its raw bytes, its dtype in numpy's own plain-data description, and
    its shape."""
    raw = torch.from_numpy(np.ascontiguousarray(array).reshape(-1).view(np.uint8).copy())
    dtype = to_data(np.lib.format.dtype_to_descr(array.dtype))
    return {"__numpy_bytes__": raw, "dtype": dtype, "shape": list(array.shape)}


def from_data(obj: Any) -> Any:
    """The inverse of `to_data`."""
    if isinstance(obj, dict):
        if obj.keys() == {"__ndarray__"}:
            return obj["__ndarray__"].numpy()
        if obj.keys() == {"__numpy_scalar__"}:
            return obj["__numpy_scalar__"].numpy()[0]
        if obj.keys() == {"__numpy_bytes__", "dtype", "shape"}:
            dtype = np.lib.format.descr_to_dtype(from_data(obj["dtype"]))
            array = obj["__numpy_bytes__"].numpy().view(dtype).reshape(obj["shape"])
            return array[()] if array.ndim == 0 else array  # a 0-d array was a scalar
        return {key: from_data(value) for key, value in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(from_data(value) for value in obj)
    return obj


def why_unreadable(path: str | Path, e: Exception, otherwise: str | None = None) -> str:
    """Why torch.load failed, said for a user: a file cut short (torch.save writes a zip archive, whose
    directory is at its end; this project's own writes are atomic, so a copy was cut), or `otherwise`
    (by default, what it raised)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError as open_error:  # unreadable: permissions, a device error
        return f"({open_error.strerror or type(open_error).__name__})"
    archive = head and b"PK\x03\x04".startswith(head)  # the archive's signature, or a cut within it
    if isinstance(e, EOFError) or (archive and not zipfile.is_zipfile(path)):
        return "(it ends early: cut off while copied?); copy it again"
    return f"({otherwise or type(e).__name__}); {WHAT_TO_GIVE}"


def save_checkpoint(path: Path, payload: dict) -> None:
    write_atomically(path, lambda f: torch.save(payload, f))


def read_checkpoint(path: str | Path, agent_name: str, resume: bool = False) -> dict:
    """A checkpoint of this project's `agent_name` agent (with what resuming needs, if `resume`),
    or a CheckpointError saying what it is not. Only ever loads with weights_only=True."""
    try:
        with warnings.catch_warnings():  # torch warns about files it then refuses; our message says it all
            warnings.simplefilter("ignore")
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        last = Path(path).with_name("last.pt")
        if Path(path).name == "best.pt" and last.is_file():  # best.pt is written at evaluations only
            raise CheckpointError(f"{path}: no such file; the run has not evaluated yet, replay {last}") from None
        raise CheckpointError(f"{path}: no such file") from None
    except IsADirectoryError:
        hint = f"; give one of its checkpoints: {Path(path) / 'best.pt'} or last.pt" if is_run_directory(path) else ""
        raise CheckpointError(f"{path}: a directory, not a checkpoint file{hint}") from None
    except pickle.UnpicklingError as e:  # torch reads a file too short for the archive's signature as a pickle
        ops, strings = pickle_contents(path)
        if not ops & {"GLOBAL", "STACK_GLOBAL", "INST", "OBJ"}:
            why = why_unreadable(path, e, "not a pickle of plain data")
            raise CheckpointError(f"{path}: not a readable checkpoint {why}") from None
        if {"agent", "obs_dim", "elapsed_seconds", "envs"} <= strings and "format" not in strings:
            raise CheckpointError(
                f"{path}: an old-format checkpoint (pickled Python objects), which this version does not "
                "load; train again, or replay it with the release that wrote it"
            ) from None
        raise CheckpointError(
            f"{path}: refused, it holds objects other than plain data (loading them could run code)"
        ) from None
    except Exception as e:
        raise CheckpointError(f"{path}: not a readable checkpoint {why_unreadable(path, e)}") from None
    if not (isinstance(ckpt, dict) and {"agent", "model", "args"} <= ckpt.keys()):
        raise CheckpointError(f"{path}: not a checkpoint written by this project; {WHAT_TO_GIVE}")
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {ckpt.get('format')}, this version reads {FORMAT}")
    missing = [key for key in BEST_KEYS + (LAST_KEYS if resume else ()) if key not in ckpt]
    if missing:
        raise CheckpointError(f"{path}: not a complete checkpoint (no {', '.join(missing)})")
    if ckpt["agent"] != agent_name:
        raise CheckpointError(f"{path}: a {ckpt['agent']} checkpoint, not {agent_name}; use the script that trained it")
    return ckpt


def pickle_contents(path: str | Path) -> tuple[set[str], set[str]]:
    """The opcode names and string arguments of a pickle file, or of the pickle in a torch zip;
    empty sets when it is neither. pickletools only reads the opcodes: it runs nothing."""
    try:
        with open(path, "rb") as f:
            data = f.read()
        if zipfile.is_zipfile(io.BytesIO(data)):
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                data = archive.read(next(n for n in archive.namelist() if n.endswith("/data.pkl")))
        ops = list(pickletools.genops(io.BytesIO(data)))
    except Exception:
        return set(), set()
    return {op.name for op, _, _ in ops}, {arg for _, arg, _ in ops if isinstance(arg, str)}


def snapshot(state, elapsed_seconds: float) -> tuple[dict, dict]:
    """The contents of best.pt and of last.pt for a training session (machinery.session.Training) now.

    The envs' states are data where every env could give it (`machinery.envs.StateAsData`), else None.
    """
    header = {"agent": state.agent.name, "env_id": state.args.env_id, "obs_dim": state.spec.obs_dim}
    header |= {"num_actions": state.spec.num_actions, "args": hyperparameters(state.args)}
    best = {"format": FORMAT, **header, "model": to_data(state.model.state_dict()), "step": state.step}
    best["eval_mean"] = state.eval_mean
    # what replay needs to show the agent observations as it saw them in training
    best["obs_statistics"] = to_data(obs_statistics(state.envs)) if state.args.norm_obs else None
    envs = list(state.envs.call("state_data"))
    last = best | to_data(
        {
            "optimizer": state.optimizer.state_dict(),
            "rng": {
                "train": state.rng.get_state(),
                "train_device": state.rng.device.type,  # a CPU generator cannot take a CUDA one's state
                "python": random.getstate(),
                "numpy": np.random.get_state(),
                "torch": torch.get_rng_state(),
            },
            "updates": state.updates,
            "best": state.best,
            "elapsed_seconds": elapsed_seconds,
            "rollout": dict(vars(state.rollout)),
            "envs": envs if all("not_data" not in env for env in envs) else None,
            "obs": state.obs,
        }
    )
    return best, last


def why_envs_are_not_data(state) -> str | None:
    """What keeps the training envs' state from being saved as data, or None."""
    reasons = [env["not_data"] for env in state.envs.call("state_data") if "not_data" in env]
    return reasons[0] if reasons else None


def restore(state, ckpt: dict) -> None:
    """Put a last.pt back into a freshly built training state. Envs saved as None (not data) are
    left as made: they start new episodes."""
    ckpt = from_data(ckpt)
    state.model.load_state_dict(ckpt["model"])
    state.optimizer.load_state_dict(ckpt["optimizer"])
    if saved_on_this_kind_of_device(ckpt["rng"], state.rng):
        state.rng.set_state(ckpt["rng"]["train"])
    else:  # resumed with another --device: the sampling goes on from a seed of its own
        state.rng.manual_seed(state.args.seed + ckpt["updates"])
    random.setstate(ckpt["rng"]["python"])
    np.random.set_state(ckpt["rng"]["numpy"])
    torch.set_rng_state(ckpt["rng"]["torch"])
    for name, value in ckpt["rollout"].items():
        getattr(state.rollout, name)[...] = value
    state.step, state.updates, state.best, state.eval_mean = (
        ckpt["step"],
        ckpt["updates"],
        ckpt["best"],
        ckpt["eval_mean"],
    )
    if ckpt["envs"] is not None:
        state.envs.set_attr("restore_state", ckpt["envs"])
        state.obs = ckpt["obs"].to(state.obs.device)


def saved_on_this_kind_of_device(saved_rng: dict, rng: torch.Generator) -> bool:
    """Whether the rollout generator's saved state is of `rng`'s kind of device (CPU or CUDA). A
    last.pt from before the device was saved beside it tells by the state's size, which differs."""
    if "train_device" in saved_rng:
        return saved_rng["train_device"] == rng.device.type
    return len(saved_rng["train"]) == len(rng.get_state())


def load_agent(path: str | Path, agent, resume: bool = False) -> tuple[torch.nn.Module, dict]:
    """Rebuild the network saved in a checkpoint: `model, ckpt = load_agent("runs/.../best.pt", AGENT)`."""
    ckpt = read_checkpoint(path, agent.name, resume)
    try:
        args = agent.args_cls(**ckpt["args"])
    except TypeError as e:
        raise CheckpointError(f"{path}: its arguments do not fit this version's flags ({e})") from None
    model = agent.build(ckpt["obs_dim"], ckpt["num_actions"], args)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError:
        raise CheckpointError(f"{path}: its weights do not fit the network of its own arguments") from None
    return model, ckpt


def agent_env(ckpt: dict, **make_kwargs) -> gym.Env:
    """An env of the checkpoint's task that gives the observations its network was trained on: made
    with --norm-obs, normalized and clipped with the statistics saved with it, held fixed.
    `make_kwargs` go to gym.make (render_mode="human", say)."""
    args = ckpt["args"]
    norm = Normalization(args["obs_clip"] if args.get("norm_obs") else None, None, args["gamma"])
    env = make_normalized(ckpt["env_id"], norm, frozen=True, **make_kwargs)
    if norm.obs_clip is not None:
        env.set_wrapper_attr("obs_rms", running_mean_std(from_data(ckpt["obs_statistics"])))
    return env


def find_run(runs_dir: str | Path, agent, args) -> tuple[Path, int] | None:
    """The latest run under `runs_dir` of `agent` whose last.pt was made with `args` (every hyperparameter
    alike, the seed and the budget too; --runs-dir aside; a flag the run's version did not have counts as
    its default), and the step it reached; None if there is none. What the tools that train many runs use
    to resume a run they stopped, or to reuse one they finished."""
    wanted = {k: v for k, v in hyperparameters(args).items() if k != "runs_dir"}
    for run_dir in sorted(Path(runs_dir).glob(f"{args.env_id}__{agent.script}__{args.seed}__*"), reverse=True):
        try:
            ckpt = read_checkpoint(run_dir / "last.pt", agent.name, resume=True)
            saved = hyperparameters(agent.args_cls(**ckpt["args"]))
        except (CheckpointError, TypeError):  # not a run of ours, one killed before its first checkpoint, or
            continue  # one with a flag this version does not have
        if {k: v for k, v in saved.items() if k != "runs_dir"} == wanted:
            return run_dir, ckpt["step"]
    return None


class EarlierRun(NamedTuple):
    """A run of the same flags that `earlier_run` found."""

    run_dir: Path
    step: int  # the step it reached
    resumed: tuple[Any, dict] | None  # `resume_args`' (args, last.pt); None where the run is complete


def earlier_run(agent, args) -> EarlierRun | None:
    """The run that `find_run` finds for `args` under their --runs-dir and what resuming it takes, or
    None if there is none. Complete is what the script would refuse to resume: its --max-steps or
    --stop-at-return reached. What the tools that train many runs ask before they start one
    (`run.train_or_reuse`, sweep.py's trials)."""
    found = find_run(args.runs_dir, agent, args)
    if found is None:
        return None
    run_dir, step = found
    try:
        return EarlierRun(run_dir, step, resume_args(dataclasses.replace(args, resume=str(run_dir)), agent, set()))
    except RunComplete:
        return EarlierRun(run_dir, step, None)


def check_flags_match(path: str | Path, ckpt: dict, args, given: set[str], may_change: tuple[str, ...]) -> None:
    """Refuse flags given on the command line that contradict the run the checkpoint belongs to,
    saying which of the run's flags may be given (`may_change`, less the action flags)."""
    for name in sorted(given - set(may_change)):
        if name in ckpt["args"] and getattr(args, name) != ckpt["args"][name]:
            saved, given_now = as_written(name, ckpt["args"][name]), as_written(name, getattr(args, name), False)
            free = ", ".join(cli_flag(n) for n in may_change if n not in args.ACTION_FLAGS)
            raise CheckpointError(
                f"{path} was made with {saved}, not {given_now}: leave {cli_flag(name)} out (of the training flags, "
                f"only {free} may be given here)"
            )


def is_run_directory(folder: str | Path) -> bool:
    """Whether `folder` holds a run's last.pt."""
    return (Path(folder) / "last.pt").is_file()


def run_directory(resume: str, script: str) -> Path:
    """--resume's RUN_DIR, or a CheckpointError: where it does not exist, or names a checkpoint file
    or the folder of runs above it (the two ways to get it wrong that paths invite, each answered with
    the flag to give)."""
    path = Path(resume)
    if not path.exists():
        raise CheckpointError(f"--resume {resume}: no such run directory")
    if path.is_file():
        raise CheckpointError(f"--resume takes a run directory, not a file: --resume {shlex.quote(str(path.parent))}")
    runs = [] if is_run_directory(path) else [p.parent for p in path.glob(f"*__{script}__*/last.pt")]
    if runs:
        latest = max(runs, key=lambda run: (run / "last.pt").stat().st_mtime)
        raise CheckpointError(
            f"--resume {resume}: a folder of runs, not a run directory; give one of its runs of {script}.py, "
            f"such as the latest: --resume {shlex.quote(str(latest))}"
        )
    return path


def resume_args(args, agent, given: set[str]):
    """For --resume RUN_DIR: the run's own arguments (with the flags a resume may change, as given)
    and its last.pt, or a CheckpointError."""
    path = run_directory(args.resume, agent.script) / "last.pt"
    _, ckpt = load_agent(path, agent, resume=True)
    check_flags_match(args.resume, ckpt, args, given, (*args.ACTION_FLAGS, *args.RESUME_MAY_CHANGE))
    args = dataclasses.replace(args, **{k: v for k, v in ckpt["args"].items() if k not in given})
    validate(args)  # what may change (--compile, say) against what may not (--snn-impl reference)
    if ckpt["step"] >= args.max_steps:
        raise RunComplete(
            f"{args.resume} is complete at step {ckpt['step']} (--max-steps {args.max_steps}): "
            "give a larger --max-steps to train it further"
        )
    if args.stop_at_return is not None and ckpt["eval_mean"] >= args.stop_at_return:
        raise RunComplete(
            f"{args.resume} reached --stop-at-return {args.stop_at_return} at step {ckpt['step']}: "
            "give a higher one to train it further"
        )
    return args, ckpt
