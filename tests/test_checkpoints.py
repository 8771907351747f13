"""machinery.checkpoints: plain data on disk, never code; exact resume; old and crafted files refused."""

import dataclasses
import os
import pickle
import re
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import FLAT_FROZEN_LAKE, ROOT, SHORT, run_script, short_run

import PPO
import Spiking_PPO
from machinery.checkpoints import CheckpointError, find_run, from_data, read_checkpoint, to_data, why_unreadable
from machinery.cli import parse_args


def test_to_data_and_back_keeps_numpy_types_and_values():
    rng = np.random.default_rng(3)
    value = {
        "array": np.arange(6, dtype=np.float64).reshape(2, 3),
        "key": np.arange(4, dtype=np.uint32),
        "scalar": np.float32(1.5),
        "tuple": ("MT19937", np.arange(3), 2, 0, 0.25),
        "generator": rng.bit_generator.state,  # 128-bit integers
        "tensor": torch.ones(2),
        "none": None,
    }
    back = from_data(to_data(value))
    assert back["array"].dtype == np.float64 and np.array_equal(back["array"], value["array"])
    assert back["key"].dtype == np.uint32
    assert type(back["scalar"]) is np.float32 and back["scalar"] == 1.5
    assert isinstance(back["tuple"], tuple) and np.array_equal(back["tuple"][1], np.arange(3))
    assert back["generator"] == value["generator"]
    with pytest.raises(TypeError, match="not plain data: CartPoleEnv"):
        to_data({"env": gym.make("CartPole-v1").unwrapped})


def test_arrays_torch_has_no_tensor_for_go_through_a_checkpoint_as_they_were(tmp_path):
    value = {
        "map": np.asarray([["S", "F"], ["H", "G"]], dtype="c"),  # FrozenLake's
        "strings": np.array([["ab", "c"]])[:, ::-1],  # not contiguous
        "records": np.array([(1, b"xyz")], dtype=[("a", "<i4"), ("b", "S3")]),
        "empty": np.array([], dtype="S1"),
        "bytes": np.bytes_(b"xy"),
        "string": np.str_("hé"),
        "date": np.datetime64("2026-12-06"),
    }
    torch.save(to_data(value), tmp_path / "c.pt")
    back = from_data(torch.load(tmp_path / "c.pt", weights_only=True))
    for name, original in value.items():
        assert type(back[name]) is type(original) and back[name].dtype == original.dtype, name
        assert np.array_equal(back[name], original), name


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
def test_every_file_a_run_writes_loads_as_plain_data(script, runs_dir):
    run_dir, _ = short_run(script, runs_dir)
    written = sorted(p.name for p in run_dir.glob("*.pt"))
    assert written == ["best.pt", "last.pt"]
    for name in written:
        ckpt = torch.load(run_dir / name, weights_only=True)  # raises on anything but plain data
        assert ckpt["format"] == 2 and ckpt["env_id"] == "CartPole-v0"
    best, last = (torch.load(run_dir / n, weights_only=True) for n in ("best.pt", "last.pt"))
    assert "optimizer" not in best and "envs" not in best  # replay and sharing need only the weights
    assert {"optimizer", "rng", "rollout", "envs", "obs"} <= last.keys()
    assert len(last["envs"]) == 4  # each env's state, as data
    # README, "Loading a checkpoint": its table of keys, and which file holds each
    table = (ROOT / "README.md").read_text().split("| key | in | what |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1:3] for line in table.splitlines()[2:]]
    keys = {in_: set() for in_ in ("both", "`last.pt`")}
    for cell, in_ in rows:
        keys[in_.strip()] |= set(re.findall(r"`(\w+)`", cell))
    assert set(best) == keys["both"] and set(last) == keys["both"] | keys["`last.pt`"]


class Payload:
    """Writes a marker file the moment anything unpickles it without weights_only."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("container", ["pickle", "torch.save"])
@pytest.mark.parametrize("flag", ["--eval-only", "--resume"])
def test_a_crafted_pickle_runs_nothing_and_is_refused(flag, container, tmp_path):
    marker = tmp_path / "pwned"
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    crafted = {"agent": "Spiking-PPO", "model": Payload(marker), "args": {}}
    with open(run_dir / "last.pt", "wb") as f:
        (pickle.dump if container == "pickle" else torch.save)(crafted, f)
    target = run_dir / "last.pt" if flag == "--eval-only" else run_dir
    before = sorted(p.name for p in tmp_path.rglob("*"))
    result = run_script("Spiking_PPO.py", flag, str(target), "--runs-dir", str(tmp_path / "runs"))
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert "refused" in result.stderr and "plain data" in result.stderr
    assert not marker.exists()
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing created


def test_a_checkpoint_of_the_earlier_pickled_format_is_refused_as_such(tmp_path):
    # format 1 pickled the training envs themselves, beside the weights
    path = tmp_path / "best.pt"
    old = {"agent": "Spiking-PPO", "model": {}, "args": {}, "obs_dim": 4, "num_actions": 2, "step": 100}
    torch.save(old | {"elapsed_seconds": 1.0, "envs": [gym.make("CartPole-v0")]}, path)
    with pytest.raises(CheckpointError, match="an old-format checkpoint"):
        read_checkpoint(path, "Spiking-PPO")
    result = run_script("Spiking_PPO.py", "--eval-only", str(path))
    assert result.returncode == 2 and "old-format checkpoint" in result.stderr


def test_a_torch_file_that_is_not_ours_or_cannot_be_opened_is_refused_saying_why(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(2)}, path)  # plain data, but not a checkpoint of these scripts
    with pytest.raises(CheckpointError) as refused:
        read_checkpoint(path, "Spiking-PPO")
    assert str(refused.value) == (
        f"{path}: not a checkpoint written by this project; give a best.pt or last.pt from a run directory of "
        "these scripts"
    )
    # a file that torch.load failed on and that is gone (or unreadable) by the time the reason is looked for
    assert why_unreadable(tmp_path / "gone.pt", RuntimeError()) == "(No such file or directory)"


FILE_LOGGING_ENV = """
import gymnasium as gym


class FileLoggingCartPole(gym.Wrapper):
    # CartPole that keeps a log file open: its state is neither picklable nor data.

    def __init__(self, log_path):
        super().__init__(gym.make("CartPole-v1"))
        self.log = open(log_path, "a", buffering=1)

    def step(self, action):
        self.log.write(f"{action}\\n")
        return self.env.step(action)


gym.register("FileLoggingCartPole-v0", entry_point=FileLoggingCartPole, kwargs={"log_path": LOG_PATH})
"""


def test_a_spiking_run_saved_before_it_had_compile_replays_resumes_and_is_found_as_such(runs_dir):
    """While --compile was PPO.py's alone, spiking runs saved their arguments without it: it counts
    as its default (off), so such a run replays, resumes, and is the run that `find_run` (compare.py,
    bench/reproduce.py) reuses for the same flags."""
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir)
    args = Spiking_PPO.SpikingArgs(**torch.load(run_dir / "last.pt", weights_only=True)["args"])
    for name in ("best.pt", "last.pt"):
        ckpt = torch.load(run_dir / name, weights_only=True)
        del ckpt["args"]["compile"]
        torch.save(ckpt, run_dir / name)
    assert find_run(runs_dir, Spiking_PPO.AGENT, args) == (run_dir, 256)
    assert find_run(runs_dir, Spiking_PPO.AGENT, dataclasses.replace(args, compile=True)) is None
    replayed = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"), "--eval-episodes", "2")
    assert replayed.returncode == 0, replayed.stderr
    resumed = run_script("Spiking_PPO.py", "--resume", str(run_dir), "--max-steps", "384", "--quiet")
    assert resumed.returncode == 0 and "done: 384 steps" in resumed.stdout, resumed.stderr
    assert torch.load(run_dir / "last.pt", weights_only=True)["args"]["compile"] is False


def test_a_run_from_before_training_episodes_were_recorded_resumes(runs_dir):
    """last.pt of such a run holds its envs without the RecordEpisodeStatistics layer; the rest of
    their state comes back, and the recorder starts afresh."""
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir, "--max-steps", "192")
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    for env in ckpt["envs"]:
        assert env["layers"][0]["class"] == "RecordEpisodeStatistics"
        del env["layers"][0]
    torch.save(ckpt, run_dir / "last.pt")
    resumed = run_script("Spiking_PPO.py", "--resume", str(run_dir), "--max-steps", "384", "--quiet")
    assert resumed.returncode == 0 and "done: 384 steps" in resumed.stdout, resumed.stderr
    assert "cannot hold the envs" not in resumed.stderr


def test_an_env_that_cannot_be_pickled_trains_checkpoints_and_resumes(runs_dir, tmp_path):
    log = tmp_path / "log.txt"
    (tmp_path / "file_env.py").write_text(f"LOG_PATH = {str(log)!r}\n" + FILE_LOGGING_ENV)
    code = "import sys, file_env, Spiking_PPO; sys.exit(Spiking_PPO.main(Spiking_PPO.AGENT, sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}

    def run(*argv):
        command = [sys.executable, "-c", code, *argv]
        return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)

    first = run("--env-id", "FileLoggingCartPole-v0", *SHORT, "--runs-dir", str(runs_dir))
    assert first.returncode == 0, first.stderr
    assert first.stderr.count("cannot hold the envs") == 1
    assert "FileLoggingCartPole.log is a TextIOWrapper" in first.stderr
    (run_dir,) = runs_dir.iterdir()
    last = torch.load(run_dir / "last.pt", weights_only=True)
    assert last["envs"] is None and last["step"] == 256
    steps_before = len(log.read_text().split())
    resumed = run("--resume", str(run_dir), "--max-steps", "512")
    assert resumed.returncode == 0, resumed.stderr
    assert "a resumed run starts new episodes" in resumed.stderr
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == 512
    assert len(log.read_text().split()) >= steps_before + 256 * 4  # the resumed session trained on it


def test_a_run_on_an_env_whose_state_holds_bytes_saves_the_envs_and_resumes_them(runs_dir):
    run_dir, first = short_run("Spiking_PPO.py", runs_dir, "--env-id", FLAT_FROZEN_LAKE)
    assert "cannot hold the envs" not in first.stderr
    saved = from_data(torch.load(run_dir / "last.pt", weights_only=True)["envs"])
    maps = [layer["state"]["desc"] for env in saved for layer in env["layers"] if layer["class"] == "FrozenLakeEnv"]
    assert len(maps) == 4 and all(np.array_equal(m, gym.make("FrozenLake-v1").unwrapped.desc) for m in maps)
    resumed = run_script("Spiking_PPO.py", "--resume", str(run_dir), "--max-steps", "512")
    assert resumed.returncode == 0, resumed.stderr
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == 512


def test_find_run_finds_the_run_of_the_same_arguments_and_the_step_it_reached(runs_dir):
    run_dir, _ = short_run("PPO.py", runs_dir)
    argv = [*SHORT, "--runs-dir", str(runs_dir)]
    last = torch.load(run_dir / "last.pt", weights_only=True)["step"]
    assert find_run(runs_dir, PPO.AGENT, parse_args(PPO.AGENT.args_cls, argv)) == (run_dir, last)
    for other in (["--seed", "2"], ["--hidden-size", "8"], ["--max-steps", "999"]):  # any flag that differs
        assert find_run(runs_dir, PPO.AGENT, parse_args(PPO.AGENT.args_cls, [*argv, *other])) is None
    assert find_run(runs_dir, Spiking_PPO.AGENT, parse_args(Spiking_PPO.AGENT.args_cls, argv)) is None
