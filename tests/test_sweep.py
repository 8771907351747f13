"""sweep.py: local Ray Tune sweeps over the training flags."""

import csv
import subprocess
import sys

import pytest
from helpers import ROOT

pytest.importorskip("ray", reason="sweeps need the optional requirements-sweep.txt")


def sweep(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "sweep.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=900
    )


TINY = ["--seeds", "1", "--max-steps", "128", "--set", "eval_interval=64", "ppo_epochs=2", "--num-cpus", "2"]


def test_a_two_trial_sweep_writes_a_run_per_trial_and_the_summary(tmp_path):
    argv = ["--grid", "T=4,8", "--agents", "snn", *TINY, "--max-steps", "256"]  # an update before the last eval
    result = sweep(*argv, "--storage-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    runs = sorted(tmp_path.rglob("CartPole-v0__Spiking_PPO__1__*"))
    assert len(runs) == 2 and all(list(run.glob("events.out.tfevents.*")) for run in runs)
    rows = list(csv.DictReader(open(tmp_path / "sweep" / "summary.csv")))
    assert [(r["agent"], r["config"], r["failed"]) for r in rows] == [
        ("snn", '{"T": "4"}', "0"),
        ("snn", '{"T": "8"}', "0"),
    ]
    assert all(r["final_return"] != "n/a" and r["firing_rate"] != "n/a" for r in rows)
    assert "Best configuration: snn" in (tmp_path / "sweep" / "summary.md").read_text()
    compare = subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), "--read-only", "--runs-dir", str(tmp_path), "--out", "c"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert compare.returncode == 0 and "| Spiking-PPO | 2 |" in compare.stdout


def test_a_failing_trial_is_reported_and_the_others_finish(tmp_path):
    grid = ["--grid", "learning_rate=1e-3,1e30", "--agents", "ann"]
    result = sweep(*grid, *TINY, "--max-steps", "512", "--storage-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {r["config"]: r for r in csv.DictReader(open(tmp_path / "sweep" / "summary.csv"))}
    assert rows['{"learning_rate": "1e30"}']["failed"] == "1"
    assert rows['{"learning_rate": "1e-3"}']["failed"] == "0"
    assert rows['{"learning_rate": "1e-3"}']["final_return"] != "n/a"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--grid", "no_such_flag=1,2"], "unknown or fixed flag --no-such-flag"),
        (["--grid", "gamma=0.9,1.5"], "--gamma must be in (0, 1]"),
        (["--grid", "T="], "expected FLAG=V1,V2"),
        (["--agents", "snn"], "empty search space"),
        (["--grid", "seed=1,2"], "unknown or fixed flag --seed"),
        (["--grid", "T=4", "--agents", "cnn"], "unknown agent 'cnn'"),
    ],
)
def test_a_bad_search_space_fails_before_ray_starts(argv, message, tmp_path):
    result = sweep(*argv, "--storage-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and message in result.stderr
    assert not list(tmp_path.iterdir())  # nothing written, Ray never started


def test_asha_early_stopping_runs_to_a_summary(tmp_path):
    argv = ["--grid", "hidden_size=16,32", "--agents", "ann", "--asha", *TINY, "--max-steps", "256"]
    result = sweep(*argv, "--storage-path", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "sweep" / "summary.csv")))
    assert sorted(r["config"] for r in rows) == ['{"hidden_size": "16"}', '{"hidden_size": "32"}']


def test_the_training_scripts_never_import_ray():
    code = "import sys, PPO, Spiking_PPO; print('ray' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
