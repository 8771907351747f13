"""machinery.run: a run's lifecycle through the scripts: signals wherever they land, one process per
run directory, what a stop says, and what is logged."""

import dataclasses
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import ROOT, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import PPO
import Spiking_PPO
from machinery import commands
from machinery.checkpoints import load_agent
from machinery.cli import UsageError
from machinery.presets import resolve
from machinery.run import claimed, event_writer, hold_lock, logged_scalars, side_by_side, train_or_reuse

TINY = ["--max-steps", "256", "--eval-interval", "64", "--eval-episodes", "2", "--ppo-epochs", "2", "--quiet"]


def start(script, runs_dir, *argv):
    """A long run in a session of its own, as a batch scheduler starts it; returns once it trains."""
    command = [sys.executable, str(ROOT / script), "--max-steps", "1000000", "--runs-dir", str(runs_dir), "--quiet"]
    process = subprocess.Popen(
        [*command, *argv], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    first = process.stdout.readline()
    assert first.startswith("step"), first + process.stderr.read()
    return process


def stop(process, signum, whole_group=False):
    """Send signum; returns (seconds until the process ended, its stdout, its stderr)."""
    sent = time.perf_counter()
    (os.killpg if whole_group else os.kill)(process.pid, signum)
    out, err = process.communicate(timeout=60)
    return time.perf_counter() - sent, out, err


def only_run_dir(runs_dir):
    (run_dir,) = runs_dir.iterdir()
    return run_dir


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_at_once_with_a_checkpoint_and_the_command_that_resumes(signum, status, runs_dir):
    process = start("Spiking_PPO.py", runs_dir, "--eval-interval", "50")
    time.sleep(0.5)
    seconds, out, err = stop(process, signum)
    assert process.returncode == status and seconds < 2, (seconds, err)
    run_dir = only_run_dir(runs_dir)
    _, ckpt = load_agent(run_dir / "last.pt", Spiking_PPO.AGENT, resume=True)
    assert f"{run_dir}/last.pt holds step {ckpt['step']}" in out, out
    assert f"resume with: python Spiking_PPO.py --resume {run_dir}" in out, out
    assert ckpt["step"] >= 50 and "Traceback" not in err, (ckpt["step"], err[-2000:])


def test_the_command_that_resumes_a_stopped_run_is_one_to_paste_whatever_the_path(capsys):
    summary = {"signal": signal.SIGINT, "run_dir": Path("my runs/ü's run"), "steps": 70, "saved_step": 50}
    assert commands.exit_status(summary, "Spiking_PPO") == 130
    command = capsys.readouterr().out.split("resume with: ", 1)[1]
    assert shlex.split(command) == ["python", "Spiking_PPO.py", "--resume", "my runs/ü's run"]


def test_sigterm_to_the_process_group_of_an_async_run_saves_and_exits_143(runs_dir):
    """The scheduler's SIGTERM reaches the env workers too: they leave it to the trainer."""
    process = start("PPO.py", runs_dir, "--vectorization", "async", "--num-envs", "2", "--eval-interval", "50")
    time.sleep(0.5)
    seconds, out, err = stop(process, signal.SIGTERM, whole_group=True)
    assert process.returncode == 143 and seconds < 2, (seconds, err[-2000:])
    assert "BrokenPipeError" not in err and "Traceback" not in err
    assert "resume with" in out
    _, ckpt = load_agent(only_run_dir(runs_dir) / "last.pt", PPO.AGENT, resume=True)
    assert ckpt["envs"] is not None  # the workers' envs, saved as data


def test_a_signal_during_a_long_evaluation_is_honoured_within_a_second(runs_dir):
    # 1,000 Pendulum episodes of 200 steps: an evaluation takes about 3 s here; the first one has
    # printed its line, the second starts 64 steps later, and the signal lands inside it
    argv = ["--env-id", "Pendulum-v1", "--eval-interval", "64", "--eval-episodes", "1000"]
    process = start("Spiking_PPO.py", runs_dir, *argv)
    time.sleep(1.0)
    seconds, out, _ = stop(process, signal.SIGTERM)
    assert process.returncode == 143 and seconds < 1.2, seconds
    _, ckpt = load_agent(only_run_dir(runs_dir) / "last.pt", Spiking_PPO.AGENT, resume=True)
    assert ckpt["step"] == 64  # the abandoned evaluation at 128 leaves the last consistent snapshot
    assert "stopped by SIGTERM at step 128" in out and "holds step 64" in out


SIGNAL_WHILE_STARTING = """
import os, signal, sys, Spiking_PPO
from machinery import envs
make = envs.new_training_envs
def make_and_be_signalled(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)  # before the run directory exists
    return make(*args, **kwargs)
envs.new_training_envs = make_and_be_signalled
sys.exit(Spiking_PPO.main(Spiking_PPO.AGENT, sys.argv[1:]))
"""


def test_a_signal_before_the_run_directory_exists_leaves_a_run_that_resumes(runs_dir):
    command = [sys.executable, "-c", SIGNAL_WHILE_STARTING, *TINY, "--runs-dir", str(runs_dir)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 143, result.stderr
    run_dir = only_run_dir(runs_dir)
    _, ckpt = load_agent(run_dir / "last.pt", Spiking_PPO.AGENT, resume=True)
    assert ckpt["step"] == 0
    resumed = run_script("Spiking_PPO.py", "--resume", str(run_dir))
    assert resumed.returncode == 0, resumed.stderr
    assert "done: 256 steps" in resumed.stdout


def test_a_run_directory_is_used_by_one_process_at_a_time(runs_dir):
    process = start("PPO.py", runs_dir, "--eval-interval", "50")
    run_dir = only_run_dir(runs_dir)
    try:
        second = run_script("PPO.py", "--resume", str(run_dir), "--max-steps", "2000000")
        assert second.returncode == 2
        assert (
            second.stderr.strip()
            == f"error: {run_dir} is in use by process {process.pid}; wait for it to end, or stop it"
        )
    finally:
        stop(process, signal.SIGTERM)
    assert process.returncode == 143  # the first run was not disturbed


def test_a_run_one_tool_claimed_is_refused_to_another_until_the_first_lets_go(runs_dir):
    args = resolve(PPO.AGENT.args_cls, ["--seed", "1", "--runs-dir", str(runs_dir)])
    seed_2, longer = dataclasses.replace(args, seed=2), dataclasses.replace(args, max_steps=args.max_steps + 1)
    with claimed([(PPO.AGENT, args)]):
        with pytest.raises(UsageError) as refused, claimed([(PPO.AGENT, seed_2), (PPO.AGENT, args)]):
            pass
        assert str(refused.value) == (
            f"PPO.py --seed 1 on CartPole-v0 in {runs_dir} is being trained by process {os.getpid()}; wait for it to "
            "end, or stop it"
        )
        spiking = resolve(Spiking_PPO.AGENT.args_cls, ["--seed", "1", "--runs-dir", str(runs_dir)])
        with claimed([(PPO.AGENT, seed_2), (PPO.AGENT, longer), (Spiking_PPO.AGENT, spiking)]):
            pass  # other runs are free, seed 2 too: the refused claim let go of what it had taken
    with claimed([(PPO.AGENT, args)]):
        pass
    assert [p.name for p in runs_dir.iterdir()] == [".claims"]  # beside the runs, which TensorBoard ignores


def test_a_lock_that_cannot_be_made_is_a_one_line_error(tmp_path):
    with pytest.raises(UsageError) as e:
        hold_lock(tmp_path / "gone" / ".lock", "taken")
    assert str(e.value) == f"{tmp_path / 'gone'}: cannot write there (No such file or directory)"


def test_resuming_removes_what_an_interrupted_checkpoint_write_left(runs_dir):
    run = run_script("PPO.py", *TINY, "--runs-dir", str(runs_dir))
    assert run.returncode == 0, run.stderr
    run_dir = only_run_dir(runs_dir)
    (run_dir / "last.pt.k3j9x.tmp").write_bytes(b"half a checkpoint")
    resumed = run_script("PPO.py", "--resume", str(run_dir), "--max-steps", "384")
    assert resumed.returncode == 0, resumed.stderr
    assert not list(run_dir.glob("*.tmp"))


def test_resuming_a_finished_run_says_it_is_complete(runs_dir):
    run = run_script("PPO.py", *TINY, "--runs-dir", str(runs_dir))
    assert run.returncode == 0, run.stderr
    run_dir = only_run_dir(runs_dir)
    again = run_script("PPO.py", "--resume", str(run_dir))
    assert again.returncode == 2
    assert f"{run_dir} is complete at step 256 (--max-steps 256)" in again.stderr
    assert "done:" not in again.stdout


def test_the_progress_bar_counts_the_steps_the_run_will_take(runs_dir, monkeypatch):
    totals = []
    real = Spiking_PPO.run.tqdm
    monkeypatch.setattr(Spiking_PPO.run, "tqdm", lambda *a, **k: totals.append(k["total"]) or real(*a, **k))
    argv = ["--max-steps", "300", "--num-steps", "128", "--ppo-epochs", "1", "--eval-interval", "100", "--quiet"]
    assert Spiking_PPO.main(PPO.AGENT, [*argv, "--runs-dir", str(runs_dir)]) == 0
    assert totals == [384]  # whole rollouts: 3 x 128


@pytest.mark.parametrize("script, agent", [("Spiking_PPO.py", "Spiking-PPO"), ("PPO.py", "PPO")])
def test_both_agents_log_the_eval_return_under_one_shared_tag_and_the_device_used(script, agent, runs_dir):
    assert run_script(script, *TINY, "--device", "auto", "--runs-dir", str(runs_dir)).returncode == 0
    acc = EventAccumulator(str(only_run_dir(runs_dir)), size_guidance={"tensors": 0})
    acc.Reload()
    own = [(e.step, e.value) for e in acc.Scalars(f"{agent}-CartPole-v0/Reward")]
    assert own and [(e.step, e.value) for e in acc.Scalars("eval/mean_return")] == own
    (text,) = acc.Tensors("hyperparameters/text_summary")
    table = text.tensor_proto.string_val[0].decode()
    assert f"|device|{'cuda' if torch.cuda.is_available() else 'cpu'}|" in table and "auto" not in table
    assert torch.load(only_run_dir(runs_dir) / "last.pt", weights_only=True)["args"]["device"] == "auto"


def test_a_signal_inside_abandonable_work_stops_it_even_when_it_surfaces_as_another_error():
    """A handler's exception raised inside C code that calls back into Python (numba's dispatcher)
    comes out as SystemError; CI met it once. Whatever comes out after a stop request is the stop."""
    from machinery import run

    stop = run.StopSignals()
    try:
        with pytest.raises(run.Stopped):
            with stop.abandonable():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(5)  # the handler runs here and raises
        assert stop.signum == signal.SIGTERM
        with pytest.raises(run.Stopped):
            with stop.abandonable():  # a stop already asked for: the work does not start
                raise AssertionError("not reached")
        stop.signum = None
        with pytest.raises(run.Stopped) as raised:
            with stop.abandonable():
                stop.signum = signal.SIGTERM  # as the handler sets it, before its Stopped is mangled
                raise SystemError("CPUDispatcher(<function _if_forward_cpu>) returned a result with an exception set")
        assert isinstance(raised.value.__cause__, SystemError)
        stop.signum = None
        with pytest.raises(ValueError):  # without a stop request, an error is itself
            with stop.abandonable():
                raise ValueError("a bug")
    finally:
        stop.restore()


def test_side_by_side_yields_in_order_and_a_ctrl_c_starts_no_further_job():
    assert list(side_by_side(lambda x: x * x, [3, 1, 2], workers=2)) == [9, 1, 4]
    started = []

    def job(x):
        started.append(x)
        if x == 0:
            raise KeyboardInterrupt  # Ctrl-C, as the first run sees it
        time.sleep(0.5)
        return x

    with pytest.raises(KeyboardInterrupt):
        list(side_by_side(job, range(6), workers=1))
    assert len(started) <= 2  # of 6: the pending ones were cancelled


def test_train_or_reuse_starts_a_run_then_reuses_it_finished_and_resumes_it_stopped(runs_dir):
    flags = ["--env-id", "CartPole-v1", "--seed", "3", "--runs-dir", str(runs_dir), *TINY]
    heard = []
    run_dir, earlier, result = train_or_reuse(PPO.AGENT, flags, heard.append)
    assert result.returncode == 0 and earlier is None and heard == []
    assert list(runs_dir.iterdir()) == [run_dir] and torch.load(run_dir / "last.pt", weights_only=True)["step"] == 256

    assert train_or_reuse(PPO.AGENT, flags, heard.append) == (run_dir, 256, None)  # finished: not run again
    assert heard == [f"finished before, in {run_dir}"]

    longer = [*flags, "--max-steps", "320"]  # another budget is another run: a new one starts
    other_dir, earlier, _ = train_or_reuse(PPO.AGENT, longer, heard.append)
    assert other_dir != run_dir and earlier is None
    ckpt = torch.load(other_dir / "last.pt", weights_only=True)
    torch.save({**ckpt, "step": 192}, other_dir / "last.pt")  # as if a signal had stopped it at step 192
    heard.clear()
    assert train_or_reuse(PPO.AGENT, longer, heard.append)[:2] == (other_dir, 192)
    assert heard == [f"resuming {other_dir} from step 192"]

    reached = [*flags, "--seed", "4", "--stop-at-return", "-1"]  # any return reaches it: done at step 64
    target_dir, _, _ = train_or_reuse(PPO.AGENT, reached, heard.append)
    heard.clear()
    assert train_or_reuse(PPO.AGENT, reached, heard.append) == (target_dir, 64, None)
    assert heard == [f"finished before, in {target_dir}"]


def test_train_or_reuse_gives_no_run_directory_when_the_script_fails(runs_dir):
    runs_dir.mkdir(exist_ok=True)
    (runs_dir / "file").write_text("not a directory")
    flags = ["--env-id", "CartPole-v1", "--runs-dir", str(runs_dir / "file"), "--max-steps", "64", "--quiet"]
    run_dir, earlier, result = train_or_reuse(PPO.AGENT, flags, print)
    assert (run_dir, earlier, result.returncode) == (None, None, 2) and "--runs-dir" in result.stderr
    with pytest.raises(UsageError, match="unrecognized arguments: --T 8"):
        train_or_reuse(PPO.AGENT, [*flags, "--T", "8"], print)


def test_a_session_that_starts_in_the_second_an_earlier_one_did_writes_an_event_file_that_sorts_after_its(
    runs_dir, monkeypatch
):
    """TensorBoard reads a run's event files in name order, and applies a resumed session's purge to
    the files before it: a file that sorts first would have its own events purged by an older file."""
    from tensorboard.summary.writer import event_file_writer

    runs_dir.mkdir()
    monkeypatch.setattr(event_file_writer, "_global_uid", event_file_writer.AtomicCounter(9))  # writer 9, then 10
    earlier = event_writer(runs_dir, 0)
    earlier.add_scalar("x", 1.0, 100)
    earlier.close()
    resumed = event_writer(runs_dir, 100)  # from the last.pt of step 100
    resumed.add_scalar("x", 2.0, 200)
    resumed.close()
    names = sorted(p.name for p in runs_dir.iterdir())
    assert names[0].endswith(".9") and names[1].endswith(".10")
    acc = EventAccumulator(str(runs_dir))
    acc.Reload()
    assert [(e.step, e.value) for e in acc.Scalars("x")] == [(100, 1.0), (200, 2.0)]


def test_a_resumed_runs_scalars_read_back_without_what_its_interruption_logged_after_last_pt(runs_dir, caplog):
    runs_dir.mkdir()
    interrupted = event_writer(runs_dir, 0)
    interrupted.add_scalar("x", 1.0, 100)  # last.pt saved at step 100
    interrupted.add_scalar("x", 2.0, 200)  # logged, then killed before the next last.pt
    interrupted.close()
    resumed = event_writer(runs_dir, 100)
    resumed.add_scalar("x", 3.0, 200)
    resumed.close()
    with caplog.at_level(logging.INFO):
        np.testing.assert_array_equal(logged_scalars(runs_dir)["x"], [[100, 1.0], [200, 3.0]])
    assert "TensorFlow restart" not in caplog.text  # the purge is the resume's, as designed: no warning of it
    with caplog.at_level(logging.INFO):
        EventAccumulator(str(runs_dir)).Reload()
    assert "TensorFlow restart" in caplog.text  # which TensorBoard's reader gives, unfiltered
