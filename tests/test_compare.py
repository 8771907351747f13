"""The comparison tool, on tiny runs of both agents."""

import subprocess
import sys

from helpers import ROOT


def compare(*args, cwd):
    return subprocess.run(
        [sys.executable, str(ROOT / "compare.py"), *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )


def test_trains_two_seeds_of_each_agent_and_writes_both_figures_and_the_table(tmp_path):
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
