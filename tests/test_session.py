"""machinery.session: however a training session ends, it keeps what was saved and leaves nothing open."""

import dataclasses
import signal

import pytest
import torch

import PPO
from machinery import checkpoints, run, session
from machinery.cli import UsageError
from machinery.speed import Adam
from Spiking_PPO import Rollout

# Pendulum-v1: its vector envs say when they are closed (CartPole's array-vectorized ones do not).
ARGS = dict(env_id="Pendulum-v1", num_envs=2, num_steps=8, eval_episodes=2, quiet=True)


def open_session(args, **kwargs):
    spec, device = session.prepare(args)
    model = PPO.AGENT.build(spec.obs_dim, spec.num_actions, args).to(device)
    optimizer = Adam(model.parameters(), lr=args.learning_rate, eps=args.adam_eps)
    rollout = Rollout(args.num_steps, args.num_envs, spec.obs_dim, spec.num_actions, device)
    return session.training(args, PPO.AGENT, spec, model, optimizer, rollout, **kwargs)


def handlers():
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def test_a_session_that_runs_to_its_end_saves_last_pt_at_the_step_it_reached(runs_dir):
    args = PPO.AnnArgs(runs_dir=str(runs_dir), **ARGS)
    before = handlers()
    with open_session(args) as t:
        assert handlers() != before  # a signal now asks the session to stop
        t.step = 5
    assert handlers() == before
    summary = t.summary()
    assert (summary["steps"], summary["saved_step"], summary["signal"]) == (5, 5, None)
    assert checkpoints.read_checkpoint(t.run.dir / "last.pt", "PPO", resume=True)["step"] == 5
    assert t.envs.closed and t.eval_envs.closed and t.run.writer.file_writer is None


def test_a_stopped_session_keeps_the_last_pt_it_had_and_says_which_signal(runs_dir):
    args = PPO.AnnArgs(runs_dir=str(runs_dir), **ARGS)
    with open_session(args) as t:
        t.step = 5
        t.run.stop.signum = signal.SIGTERM
        with t.run.abandonable():  # as an update that a signal interrupted
            raise AssertionError("abandonable() must not start once a stop was asked for")
    summary = t.summary()
    assert (summary["steps"], summary["saved_step"], summary["signal"]) == (5, 0, signal.SIGTERM)
    assert checkpoints.read_checkpoint(t.run.dir / "last.pt", "PPO", resume=True)["step"] == 0
    assert t.envs.closed and t.eval_envs.closed


def test_an_error_in_the_loop_keeps_the_last_pt_and_restores_the_signal_handlers(runs_dir):
    args = PPO.AnnArgs(runs_dir=str(runs_dir), **ARGS)
    before = handlers()
    with pytest.raises(run.TrainingDiverged), open_session(args) as t:
        t.step = 5
        raise run.TrainingDiverged("non-finite loss")
    assert handlers() == before
    assert checkpoints.read_checkpoint(t.run.dir / "last.pt", "PPO", resume=True)["step"] == 0


def test_a_session_that_cannot_start_restores_the_signal_handlers(tmp_path):
    (tmp_path / "file").write_text("")
    args = PPO.AnnArgs(runs_dir=str(tmp_path / "file"), **ARGS)
    before = handlers()
    with pytest.raises(UsageError, match="(?i)not a directory"), open_session(args):
        pass
    assert handlers() == before


def test_a_resumed_session_counts_only_its_own_seconds_and_starts_where_last_pt_is(runs_dir):
    args = PPO.AnnArgs(runs_dir=str(runs_dir), **ARGS)
    with open_session(args) as t:
        t.step = 8
    ckpt = checkpoints.read_checkpoint(t.run.dir / "last.pt", "PPO", resume=True)
    ckpt["elapsed_seconds"] = 1000.0
    resumed_args = dataclasses.replace(args, resume=str(t.run.dir), max_steps=16)
    with open_session(resumed_args, resume_from=ckpt) as resumed:
        assert resumed.step == 8 and resumed.run.dir == t.run.dir
        assert resumed.run.training_seconds() >= 1000.0
    assert 0 <= resumed.summary()["seconds"] < 100


def test_a_run_resumed_on_another_kind_of_device_reseeds_its_rollout_generator(runs_dir):
    """The saved generator state says which kind of device it came from; a CUDA one cannot be put
    into a CPU generator, so the resumed run seeds its own from --seed and the updates done."""
    args = PPO.AnnArgs(runs_dir=str(runs_dir), **ARGS)
    with open_session(args) as t:
        t.step, t.updates = 8, 3
    ckpt = checkpoints.read_checkpoint(t.run.dir / "last.pt", "PPO", resume=True)
    assert ckpt["rng"]["train_device"] == "cpu"
    resumed_args = dataclasses.replace(args, resume=str(t.run.dir), max_steps=16)
    with open_session(resumed_args, resume_from=ckpt) as same_device:
        assert torch.equal(same_device.rng.get_state(), ckpt["rng"]["train"])
    ckpt["rng"]["train_device"] = "cuda"
    with open_session(resumed_args, resume_from=ckpt) as other_device:
        assert torch.equal(other_device.rng.get_state(), torch.Generator().manual_seed(args.seed + 3).get_state())
    del ckpt["rng"]["train_device"]  # a last.pt of an earlier version: a CPU state has a CPU state's size
    with open_session(resumed_args, resume_from=ckpt) as earlier_version:
        assert torch.equal(earlier_version.rng.get_state(), ckpt["rng"]["train"])
