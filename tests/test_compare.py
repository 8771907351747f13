"""The comparison tool, on tiny runs of both agents."""

import subprocess
import sys

import torch
from helpers import ROOT, run_script


def compare(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_trains_two_seeds_of_each_agent_and_writes_both_figures_and_the_table_that_say_what_they_plot(tmp_path):
    runs = tmp_path / "runs"
    result = compare("--seeds", "2", "--max-steps", "256", "--runs-dir", str(runs), "--out", "cmp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(list(runs.glob("CartPole-v0__Spiking_PPO__*"))) == 2
    assert len(list(runs.glob("CartPole-v0__PPO__*"))) == 2
    for name in ("cmp-steps.svg", "cmp-steps.png", "cmp-time.svg", "cmp-time.png", "cmp.md"):
        assert (tmp_path / name).stat().st_size > 0, name
    rows = [line for line in (tmp_path / "cmp.md").read_text().splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1:3] for row in rows] == [[" Spiking-PPO ", " 2 "], [" PPO ", " 2 "]]
    assert (tmp_path / "cmp-steps.svg").read_text().lstrip().startswith("<?xml")
    time_axis = (tmp_path / "cmp-time.svg").read_text()
    assert "training seconds" in time_axis and "wall time" not in time_axis
    assert "range of the runs" in (tmp_path / "cmp-steps.svg").read_text()  # 2 seeds: no interval to claim
    assert "sample standard deviation" in (tmp_path / "cmp.md").read_text()

    again = compare("--read-only", "--runs-dir", str(runs), "--out", "again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    assert (tmp_path / "again.md").read_text() == (tmp_path / "cmp.md").read_text()


def test_with_no_runs_to_read_it_fails_in_one_line(tmp_path):
    result = compare("--read-only", "--runs-dir", str(tmp_path / "nothing"), cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "no CartPole-v0 runs" in result.stderr


def test_bad_flags_fail_in_one_line(tmp_path):
    result = compare("--seeds", "0", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


def test_it_compares_the_runs_it_trained_not_others_in_the_runs_dir(tmp_path):
    runs = tmp_path / "runs"
    earlier = run_script("PPO.py", "--max-steps", "512", "--runs-dir", str(runs), "--quiet")
    assert earlier.returncode == 0, earlier.stderr
    result = compare("--seeds", "1", "--max-steps", "256", "--runs-dir", str(runs), "--out", "cmp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| PPO | 1 |" in result.stdout  # the 512-step run is not averaged in
    assert len(list(runs.glob("CartPole-v0__PPO__*"))) == 2


def test_read_only_refuses_to_average_runs_of_different_configurations_and_select_picks(tmp_path):
    runs = tmp_path / "runs"
    for steps in ("256", "384"):
        assert run_script("PPO.py", "--max-steps", steps, "--runs-dir", str(runs), "--quiet").returncode == 0
    mixed = compare("--read-only", "--runs-dir", str(runs), cwd=tmp_path)
    assert mixed.returncode == 2 and len(mixed.stderr.strip().splitlines()) == 1
    assert "the runs differ in --max-steps (256, 384)" in mixed.stderr
    picked = compare("--read-only", "--runs-dir", str(runs), "--select", "max_steps=384", "--out", "c", cwd=tmp_path)
    assert picked.returncode == 0, picked.stderr
    assert "| PPO | 1 |" in picked.stdout


def test_read_only_counts_a_flag_a_run_predates_at_its_default(tmp_path):
    runs = tmp_path / "runs"
    for seed in ("1", "2"):
        assert (
            run_script(
                "Spiking_PPO.py", "--seed", seed, "--max-steps", "256", "--runs-dir", str(runs), "--quiet"
            ).returncode
            == 0
        )
    older = next(runs.glob("*__2__*")) / "last.pt"  # as if made before --soft-reset was added
    ckpt = torch.load(older, weights_only=True)
    del ckpt["args"]["soft_reset"]
    torch.save(ckpt, older)
    compared = compare("--read-only", "--runs-dir", str(runs), "--out", "c", cwd=tmp_path)
    assert compared.returncode == 0, compared.stderr
    assert "| Spiking-PPO | 2 |" in compared.stdout
