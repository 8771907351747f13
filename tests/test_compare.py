"""The comparison tool, on tiny runs of both agents."""

import errno
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import ROOT, run_script

import compare as compare_tool
import PPO
import Spiking_PPO
from machinery.checkpoints import read_checkpoint
from machinery.cli import UsageError, flags_for_each


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
    written = ["cmp-steps.svg", "cmp-steps.png", "cmp-time.svg", "cmp-time.png", "cmp.md"]
    for name in written:
        assert (tmp_path / name).stat().st_size > 0, name
    assert result.stdout.splitlines()[-1] == "written: " + ", ".join(written)  # the files it says, no others
    rows = [line for line in (tmp_path / "cmp.md").read_text().splitlines() if line.startswith("| ")][1:]
    assert [row.split("|")[1:3] for row in rows] == [
        [" Spiking-PPO ", " 2 "],
        [" PPO ", " 2 "],
        [" Spiking-PPO - PPO, in standard errors ", " - "],
    ]
    assert (tmp_path / "cmp-steps.svg").read_text().lstrip().startswith("<?xml")
    time_axis = (tmp_path / "cmp-time.svg").read_text()
    assert "training seconds" in time_axis and "wall time" not in time_axis
    assert "range of the runs" in (tmp_path / "cmp-steps.svg").read_text()  # 2 seeds: no interval to claim
    assert "target 195" in (tmp_path / "cmp-steps.svg").read_text()  # the dotted line, named in the legend
    assert "sample standard deviation" in (tmp_path / "cmp.md").read_text()

    again = compare("--read-only", "--runs-dir", str(runs), "--out", "figures/new/again", cwd=tmp_path)
    assert again.returncode == 0, again.stderr  # --out's folder is made
    assert (tmp_path / "figures/new/again.md").read_text() == (tmp_path / "cmp.md").read_text()


def test_the_table_says_how_many_standard_errors_apart_the_agents_means_lie():
    # rows: (rollout step, training seconds, eval return); the target is 195
    snn = [np.array([[1000, 2, 195], [3000, 6, 200]]), np.array([[1000, 3, 100], [2000, 6, 196], [3000, 9, 198]])]
    ann = [np.array([[1000, 1, 100], [3000, 3, 196]]), np.array([[1000, 1, 100], [3000, 3, 150]])]
    cost = {tag: 1.0 for tag in compare_tool.COST_TAGS}
    table = compare_tool.summary_table(
        {"Spiking-PPO": snn, "PPO": ann}, {"Spiking-PPO": [cost] * 2, "PPO": [cost] * 2}, 195
    )
    rows = [line.split(" | ")[1:-2] for line in table.splitlines() if line.startswith("| ")][1:]
    assert rows[0] == ["2", "199.0 ± 1.4", "1500 ± 707", "4.0 ± 2.8", "25.0 ± 7.1"]
    assert rows[1] == ["2", "173.0 ± 32.5", "3000 (1/2 seeds)", "3.0 (1/2 seeds)", "10.0 ± 0.0"]
    # by hand: final returns 199 - 173 = 26 over sqrt(2 / 2 + 1058 / 2) = 23.0, 1.1; to 195 one ANN run
    # reached it, no spread to measure by: -; seconds per 1e4 steps (20, 30 against 10, 10): 15 / 5 = 3.0
    assert rows[2] == ["-", "1.1", "-", "-", "3.0"]
    assert table.splitlines()[4].startswith("| Spiking-PPO - PPO, in standard errors |")
    assert table.splitlines()[4].endswith("| - | - |")  # none for the cost, which differs by design
    one_agent = compare_tool.summary_table({"Spiking-PPO": snn, "PPO": []}, {"Spiking-PPO": [cost] * 2}, 195)
    one_seed = compare_tool.summary_table(
        {"Spiking-PPO": snn[:1], "PPO": ann}, {"Spiking-PPO": [cost], "PPO": [cost] * 2}, 195
    )
    assert "standard error" not in one_agent and "standard error" not in one_seed


def test_with_no_runs_to_read_it_fails_in_one_line(tmp_path):
    result = compare("--read-only", "--runs-dir", str(tmp_path / "nothing"), cwd=tmp_path)
    assert result.returncode == 2
    assert (
        result.stderr
        == f"error: --runs-dir {tmp_path / 'nothing'}: no such directory; name the one that holds the runs\n"
    )
    (tmp_path / "empty").mkdir()
    result = compare("--read-only", "--runs-dir", str(tmp_path / "empty"), cwd=tmp_path)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "no CartPole-v0 runs" in result.stderr
    run_dir = tmp_path / "empty" / "CartPole-v0__PPO__1__1700000000"
    run_dir.mkdir()
    (run_dir / "last.pt").write_bytes(b"")  # a run's directory for the directory that holds them
    result = compare("--read-only", "--runs-dir", str(run_dir), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == f"error: --runs-dir {run_dir}: a run's own directory; name the one that holds the runs\n"


def test_bad_flags_fail_in_one_line(tmp_path):
    result = compare("--seeds", "0", cwd=tmp_path)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("preset, budget", [("tutorial", 100_000), ("cleanrl", 125_000)])
def test_without_max_steps_each_run_trains_as_long_as_its_script_would(preset, budget, tmp_path, capsys):
    # an evaluation after the end shows the length each run was given, before anything trains
    flags = ["--seeds", "1", "--runs-dir", str(tmp_path / "runs"), "--", "--preset", preset, "--eval-interval", "1e6"]
    assert compare_tool.main(flags) == 2
    assert f"--max-steps {budget} ends before the first evaluation" in capsys.readouterr().err


def test_its_step_count_takes_a_whole_number_in_a_floats_notation_as_the_scripts_do():
    assert compare_tool.parse_args(["--max-steps", "1e5", "--seeds", "3.0"]).max_steps == 100_000
    with pytest.raises(UsageError, match="argument --seeds: invalid integer value: '2.5'"):
        compare_tool.parse_args(["--seeds", "2.5"])


def test_it_compares_the_runs_it_trained_not_others_in_the_runs_dir(tmp_path):
    runs = tmp_path / "runs"
    earlier = run_script("PPO.py", "--max-steps", "512", "--runs-dir", str(runs), "--quiet")
    assert earlier.returncode == 0, earlier.stderr
    result = compare("--seeds", "1", "--max-steps", "256", "--runs-dir", str(runs), "--out", "cmp", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "| PPO | 1 |" in result.stdout  # the 512-step run is not averaged in
    assert len(list(runs.glob("CartPole-v0__PPO__*"))) == 2


def test_the_same_command_again_resumes_a_stopped_run_and_takes_finished_ones_as_they_are(tmp_path):
    runs, cmp = tmp_path / "runs", ["--max-steps", "512", "--runs-dir", str(tmp_path / "runs"), "--out", "c"]
    flags = ["--env-id", "CartPole-v0", "--seed", "1", "--max-steps", "512", "--runs-dir", str(runs), "--quiet"]
    # seed 1 of the ANN as compare.py starts it, stopped by a signal after its first checkpoints
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "PPO.py"), *flags, "--eval-interval", "128"], stdout=subprocess.PIPE, text=True
    )
    assert first.stdout.readline().startswith("step")
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    (stopped,) = runs.iterdir()
    stopped_at = torch.load(stopped / "last.pt", weights_only=True)["step"]
    assert stopped_at < 512

    result = compare("--seeds", "1", *cmp, "--", "--eval-interval", "128", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"PPO seed 1: resuming {stopped} from step {stopped_at}" in result.stderr
    assert sorted(runs.glob("*__PPO__*")) == [stopped] and len(list(runs.glob("*__Spiking_PPO__*"))) == 1
    assert torch.load(stopped / "last.pt", weights_only=True)["step"] == 512
    table = (tmp_path / "c.md").read_text()

    again = compare("--seeds", "1", *cmp, "--", "--eval-interval", "128", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr.count("finished before") == 2, again.stderr
    assert len(list(runs.glob("CartPole-v0__*"))) == 2 and (tmp_path / "c.md").read_text() == table
    more = compare("--seeds", "2", *cmp, "--", "--eval-interval", "128", cwd=tmp_path)  # seed 2 alone is trained
    assert more.returncode == 0 and more.stderr.count("finished before") == 2, more.stderr
    assert len(list(runs.glob("CartPole-v0__*"))) == 4 and "| PPO | 2 |" in more.stdout


def test_a_second_compare_of_the_same_runs_while_the_first_trains_them_refuses_to_start(tmp_path, capsys):
    runs = tmp_path / "runs"
    argv = ["--seeds", "1", "--max-steps", "100000", "--runs-dir", str(runs), "--out", str(tmp_path / "c")]
    first = subprocess.Popen(
        [sys.executable, str(ROOT / "compare.py"), *argv], cwd=ROOT, stderr=subprocess.PIPE, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 120
        while len(list(runs.glob("CartPole-v0__*/last.pt"))) < 2:  # both runs train
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        assert compare_tool.main(argv) == 2
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line == (
            f"error: Spiking_PPO.py --seed 1 on CartPole-v0 in {runs} is being trained by process {first.pid}; wait "
            "for it to end, or stop it"
        )
        assert len(list(runs.glob("CartPole-v0__*"))) == 2  # no run of its own started
    finally:
        os.killpg(first.pid, signal.SIGINT)  # Ctrl-C: the runs keep their last.pt
        first.communicate(timeout=60)
    assert first.returncode == 130


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
    both = ["--select", "max_steps=384", "--select", "seed=1"]  # given twice: both apply
    picked = compare("--read-only", "--runs-dir", str(runs), *both, "--out", "c", cwd=tmp_path)
    assert picked.returncode == 0 and "| PPO | 1 |" in picked.stdout, picked.stderr
    # values as a command line writes them: any spelling of a number, a switch, an unset number
    written = ["max_steps=3.84e2", "learning_rate=1e-3", "norm_adv=FALSE", "max_grad_norm=none", "env_id=CartPole-v0"]
    picked = compare("--read-only", "--runs-dir", str(runs), *(f"--select={v}" for v in written), cwd=tmp_path)
    assert picked.returncode == 0 and "| PPO | 1 |" in picked.stdout, picked.stderr
    none = compare("--read-only", "--runs-dir", str(runs), "--select", "max_steps=512", cwd=tmp_path)
    assert none.returncode == 2
    assert none.stderr == f"error: --select max_steps=512 picks none of the 2 CartPole-v0 runs under {runs}\n"
    unknown = compare("--read-only", "--runs-dir", str(runs), "--select", "max-steps=384", "lr=1e-3", cwd=tmp_path)
    assert unknown.returncode == 2 and unknown.stderr.startswith("error: --select lr=...: the runs have no such flag")


def test_read_only_refuses_two_runs_of_one_seed_which_would_count_as_two_seeds(tmp_path, capsys):
    runs = tmp_path / "runs"
    for _ in range(2):  # the same command twice: two runs of seed 1, the second in a -1 folder if in one second
        assert run_script("PPO.py", "--max-steps", "128", "--runs-dir", str(runs), "--quiet").returncode == 0
    first, second = sorted(d.name for d in runs.iterdir())
    assert compare_tool.main(["--read-only", "--runs-dir", str(runs), "--out", str(tmp_path / "c")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: PPO: 2 runs of --seed 1 ({first}, {second}): a seed counts once; move all but one out of --runs-dir"
    )
    assert not (tmp_path / "c.md").exists()


@pytest.mark.parametrize("flag", [["--seeds", "3"], ["--max-steps", "512"], ["--workers", "1"]])
def test_read_only_refuses_the_flags_of_training_which_it_would_ignore(flag, tmp_path, capsys):
    assert compare_tool.main(["--read-only", "--runs-dir", str(tmp_path), *flag]) == 2
    assert f"error: {flag[0]} with --read-only: it trains nothing" in capsys.readouterr().err


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


def test_the_flags_after_double_dash_train_both_agents_each_taking_those_it_has(tmp_path):
    runs = tmp_path / "runs"
    flags = ["--hidden-size", "8", "--T", "4", "--activation", "tanh", "--num-envs", "2", "--mini-batch-size", "64"]
    result = compare("--seeds", "1", "--max-steps", "128", "--runs-dir", str(runs), "--", *flags, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (snn,), (ann,) = runs.glob("*__Spiking_PPO__*"), runs.glob("*__PPO__*")
    snn_args = read_checkpoint(snn / "last.pt", "Spiking-PPO")["args"]
    ann_args = read_checkpoint(ann / "last.pt", "PPO")["args"]
    for args in (snn_args, ann_args):
        assert (args["hidden_size"], args["num_envs"], args["mini_batch_size"], args["max_steps"]) == (8, 2, 64, 128)
    assert snn_args["T"] == 4 and "activation" not in snn_args
    assert ann_args["activation"] == "tanh" and "T" not in ann_args
    assert "| Spiking-PPO | 1 |" in result.stdout and "| PPO | 1 |" in result.stdout


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--bogus", "3", "--T", "4"], "unrecognized arguments: --bogus (no agent has them)"),
        (["--seed", "2"], "--seed after --: compare.py sets it for each run; compare.py trains seeds 1 to --seeds"),
        (["--max-steps", "64"], "--max-steps after --: compare.py sets it for each run; give it to compare.py"),
        (["--resume", "runs/x"], "--resume after --: not a training flag"),
        (["--T", "0"], "--T must be an integer > 0, got 0"),
        (["--mini-batch-size", "4096"], "--mini-batch-size 4096 is larger than a rollout"),
        (["--preset", "nope"], "argument --preset: invalid choice: 'nope'"),
        (["--eval-interval", "2000"], "--max-steps 1000 ends before the first evaluation, at step 2000"),
        (["--preset", "cleanrl"], "--max-steps 1000 ends before the first evaluation, at step 2500"),  # the preset's
    ],
)
def test_bad_training_flags_stop_it_in_one_line_before_anything_is_trained(flags, message, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert compare_tool.main(["--seeds", "1", "--max-steps", "1000", "--runs-dir", str(runs), "--", *flags]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert "failed" not in line and not runs.exists()  # refused by compare.py itself, not by a run


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--eval-interval", "150"], "unrecognized arguments: --eval-interval; training flags go after --: "),
        (["--no-norm-adv"], "unrecognized arguments: --no-norm-adv; training flags go after --: "),
        (["--bogus"], "unrecognized arguments: --bogus\n"),  # no training flag: no word of where
    ],
)
def test_a_training_flag_before_the_double_dash_is_refused_saying_where_it_goes(argv, message, tmp_path, capsys):
    runs = tmp_path / "runs"
    assert compare_tool.main(["--seeds", "1", "--runs-dir", str(runs), *argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and message in err and not runs.exists()


def test_an_out_that_cannot_be_written_is_refused_before_anything_is_trained(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    runs = tmp_path / "runs"
    argv = ["--seeds", "1", "--max-steps", "64", "--runs-dir", str(runs), "--out", str(tmp_path / "file" / "x")]
    assert compare_tool.main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: --out {tmp_path / 'file' / 'x'}: {tmp_path / 'file'} is a file, not a folder"
    (tmp_path / "cmp-time.png").mkdir()  # one of the files --out cmp names
    assert compare_tool.main([*argv[:-1], str(tmp_path / "cmp")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: --out {tmp_path / 'cmp'}: {tmp_path / 'cmp-time.png'} is a folder; name a file to write"
    (tmp_path / "notes.md").write_text("# Notes\n")  # --out notes would write the table over them
    assert compare_tool.main([*argv[:-1], str(tmp_path / "notes")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: --out {tmp_path / 'notes'}: {tmp_path / 'notes.md'} exists and is not a table of this project (its "
        "first line is not a table row); name another file, or move that one away"
    )
    assert (tmp_path / "notes.md").read_text() == "# Notes\n"
    assert not runs.exists()


def test_a_disk_that_fills_up_while_it_writes_leaves_the_earlier_comparison_whole(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    first = compare("--seeds", "1", "--max-steps", "64", "--runs-dir", str(runs), "--out", "cmp", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    before = {p.name: p.read_bytes() for p in tmp_path.glob("cmp*")}

    def full_disk(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("machinery.files.os.fsync", full_disk)
    out = str(tmp_path / "cmp")  # another --target: a figure and a table that differ from the earlier ones
    assert compare_tool.main(["--read-only", "--runs-dir", str(runs), "--out", out, "--target", "5"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: writing {out}-steps.svg: No space left on device; the runs are intact"
    assert {p.name: p.read_bytes() for p in tmp_path.glob("cmp*")} == before  # whole, and no temporary file


def test_runs_that_fail_are_reported_in_one_line_with_exit_status_1(tmp_path, monkeypatch, capsys):
    """A run that diverged is not bad input (exit 2): the scripts exit 1 for it, and so does compare.py."""
    diverged = "error: non-finite loss or parameters in update 1 (rollout step 128); stopped"
    monkeypatch.setattr(
        compare_tool.subprocess, "run", lambda command, **kwargs: subprocess.CompletedProcess(command, 1, "", diverged)
    )
    assert compare_tool.main(["--seeds", "2", "--workers", "1", "--runs-dir", str(tmp_path / "runs")]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: Spiking_PPO.py --seed 1 failed (and 3 more runs): {diverged.removeprefix('error: ')}"


def test_ctrl_c_starts_no_further_run_and_ends_in_one_line(tmp_path, monkeypatch, capsys):
    started = []

    def run(command, **kwargs):  # the first run is stopped by Ctrl-C; the next takes a while
        started.append(command)
        if len(started) == 1:
            raise KeyboardInterrupt
        time.sleep(0.5)
        return subprocess.CompletedProcess(command, 130, "", "")

    monkeypatch.setattr(compare_tool.subprocess, "run", run)
    runs = tmp_path / "runs"
    assert compare_tool.main(["--seeds", "3", "--workers", "1", "--runs-dir", str(runs)]) == 130
    assert len(started) <= 2  # of 6 runs: the pending ones were cancelled
    assert (
        capsys.readouterr().err
        == "stopped by SIGINT; the runs it stopped kept their last.pt, and the same command resumes them\n"
    )


def test_a_target_that_is_not_a_finite_return_is_refused_before_anything_is_trained(tmp_path, capsys):
    assert compare_tool.main(["--target", "nan", "--seeds", "1", "--runs-dir", str(tmp_path / "runs")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: --target must be a finite return, got nan" and not (tmp_path / "runs").exists()


def test_an_env_with_no_reward_threshold_and_no_target_is_compared_by_its_returns_alone(tmp_path, capsys):
    argv = ["--env-id", "Pendulum-v1", "--seeds", "1", "--max-steps", "200", "--out", str(tmp_path / "cmp")]
    flags = ["--", "--eval-interval", "100", "--eval-episodes", "2", "--num-steps", "100", "--ppo-epochs", "1"]
    assert compare_tool.main([*argv, "--runs-dir", str(tmp_path / "runs"), *flags]) == 0
    table = (tmp_path / "cmp.md").read_text()
    assert table.splitlines()[0] == (
        "| agent | seeds | final eval return | training seconds per 1e4 steps | actor SynOps per decision "
        "| actor energy per decision (nJ) |"
    )
    assert all(line.count("|") == 7 for line in table.splitlines() if line.startswith("|"))
    assert "target" not in table and "k/n seeds" not in table
    figure = (tmp_path / "cmp-steps.svg").read_text()
    assert "target" not in figure  # no line, nor its name in the legend
    assert "Spiking-PPO (1 seed)" in figure and "PPO (1 seed)" in figure and "1 seeds" not in figure


def test_select_refuses_two_values_of_one_flag(tmp_path, capsys):
    argv = ["--read-only", "--runs-dir", str(tmp_path), "--select", "T=4", "--select", "T=8"]
    assert compare_tool.main(argv) == 2
    assert "error: --select gives T twice (4, 8): a run has one value" in capsys.readouterr().err


def test_more_runs_at_once_than_cores_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(compare_tool.resources, "usable_cores", lambda: 2)
    argv = ["--workers", "3", "--seeds", "1", "--max-steps", "128", "--runs-dir", str(tmp_path / "runs")]
    assert compare_tool.main(argv) == 2  # (tiny runs: were it to train, it would fail fast)
    assert "error: --workers 3 is more than the 2 cores" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_read_only_refuses_training_flags(tmp_path, capsys):
    assert compare_tool.main(["--read-only", "--runs-dir", str(tmp_path), "--", "--T", "4"]) == 2
    assert "with --read-only, pick runs with --select" in capsys.readouterr().err


def test_one_command_line_is_shared_out_among_the_agents_by_the_flags_each_has():
    classes = {"Spiking-PPO": Spiking_PPO.SpikingArgs, "PPO": PPO.AGENT.args_cls}
    flags = ["--hidden-size", "8", "--T", "8", "--soft-reset", "--activation", "tanh", "--readout-tau=4", "--seed", "8"]
    assert flags_for_each(flags, classes) == {
        "Spiking-PPO": ["--hidden-size", "8", "--T", "8", "--soft-reset", "--readout-tau=4", "--seed", "8"],
        "PPO": ["--hidden-size", "8", "--activation", "tanh", "--seed", "8"],
    }
    assert flags_for_each([], classes) == {"Spiking-PPO": [], "PPO": []}
    with pytest.raises(UsageError, match="invalid integer value: 'x'"):
        flags_for_each(["--T", "x"], classes)
