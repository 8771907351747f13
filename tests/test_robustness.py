"""Other tasks, time limits, faults and bad arguments."""

import dataclasses
import math
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import ROOT, run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import PPO
import Spiking_PPO
from machinery import cli, run
from machinery.checkpoints import CheckpointError, load_agent, save_checkpoint
from machinery.envs import env_spec, episode_end_targets, time_limit_cuts
from Spiking_PPO import compute_gae

TINY = ["--max-steps", "64", "--num-steps", "32", "--mini-batch-size", "64", "--ppo-epochs", "2"]
TINY += ["--eval-interval", "32", "--eval-episodes", "2", "--quiet"]


# ---- time limits -------------------------------------------------------------------------
def targets(rewards, terminated, truncated, final_values, gamma, truncation_as_termination=False):
    """What the training loop hands GAE for one step: which episodes a time limit cut, then the targets."""
    cut_by_time = time_limit_cuts(terminated, truncated, truncation_as_termination)
    return episode_end_targets(rewards, terminated | truncated, cut_by_time, final_values, gamma)


def test_a_time_limit_is_bootstrapped_with_the_critics_value_of_the_final_observation():
    # two envs, one step: env 0 hit its time limit, env 1 fell over (terminated)
    rewards, final_values = np.array([1.0, 1.0]), np.array([10.0, 7.0])
    terminated, truncated = np.array([False, True]), np.array([True, False])
    r, mask = targets(rewards, terminated, truncated, final_values, gamma=0.9)
    np.testing.assert_allclose(r, [1.0 + 0.9 * 10.0, 1.0])
    np.testing.assert_array_equal(mask, [0.0, 0.0])
    r, mask = targets(rewards, terminated, truncated, final_values, 0.9, truncation_as_termination=True)
    np.testing.assert_allclose(r, [1.0, 1.0])
    np.testing.assert_array_equal(mask, [0.0, 0.0])


def test_gae_over_a_hand_built_rollout_with_a_truncation():
    # one env, steps 0..2, the time limit cuts the episode at step 1 (final value 5), a new one starts
    gamma, lam = 0.9, 1.0
    values, next_value = [0.5, 0.4, 0.3], 0.2
    steps = [(False, False), (False, True), (False, False)]  # (terminated, truncated)

    def returns_with(truncation_as_termination):
        rewards, masks = zip(
            *(
                targets(
                    np.array([1.0]), np.array([te]), np.array([tr]), np.array([5.0]), gamma, truncation_as_termination
                )
                for te, tr in steps
            ),
            strict=True,
        )
        col = lambda xs: torch.tensor(np.array(xs), dtype=torch.float64).reshape(-1, 1, 1)  # noqa: E731
        nv = torch.tensor([[next_value]], dtype=torch.float64)
        return compute_gae(nv, col(rewards), col(masks), col(values), gamma, lam).flatten()

    # lambda = 1: discounted sums; step 1 ends with 1 + 0.9 * 5, step 2 with 1 + 0.9 * 0.2
    expected = [1 + 0.9 * (1 + 0.9 * 5), 1 + 0.9 * 5, 1 + 0.9 * 0.2]
    torch.testing.assert_close(returns_with(False), torch.tensor(expected, dtype=torch.float64))
    # the tutorial's treatment: the time limit ends the return like a failure
    torch.testing.assert_close(returns_with(True), torch.tensor([1.9, 1.0, 1.18], dtype=torch.float64))


# ---- other tasks -------------------------------------------------------------------------
@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
@pytest.mark.parametrize("env_id", ["Pendulum-v1", "Acrobot-v1"])
def test_both_scripts_train_on_other_tasks(script, env_id, runs_dir):
    result = run_script(script, "--env-id", env_id, *TINY, "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("eval return") >= 2


def test_box_actions_are_clipped_for_the_env_and_the_log_prob_is_of_the_unclipped_sample():
    spec = env_spec("Pendulum-v1")  # actions in [-2, 2]
    sample = torch.tensor([[-5.0], [0.5], [3.0]])
    np.testing.assert_allclose(spec.to_env_action(sample), [[-2.0], [0.5], [2.0]])
    dist = torch.distributions.Normal(torch.zeros(3, 1), torch.ones(3, 1))
    unclipped = dist.log_prob(sample)
    assert unclipped[0, 0] < dist.log_prob(torch.tensor([[-2.0]]))[0, 0]


def test_actions_sent_to_the_env_stay_inside_the_bounds(monkeypatch, runs_dir):
    import gymnasium as gym

    sent = []
    step = gym.vector.SyncVectorEnv.step
    monkeypatch.setattr(gym.vector.SyncVectorEnv, "step", lambda self, a: sent.append(np.array(a)) or step(self, a))
    build = Spiking_PPO.AGENT.build

    def wide_policy(*args):  # so that many samples fall outside [-2, 2]
        model = build(*args)
        with torch.no_grad():
            model.log_std.fill_(1.5)
        return model

    monkeypatch.setattr(Spiking_PPO.AGENT, "build", wide_policy)
    assert Spiking_PPO.main(Spiking_PPO.AGENT, ["--env-id", "Pendulum-v1", *TINY, "--runs-dir", str(runs_dir)]) == 0
    actions = np.concatenate(sent)
    assert len(actions) >= 64 * 4 and actions.min() >= -2.0 and actions.max() <= 2.0
    assert (np.abs(actions) == 2.0).mean() > 0.2  # clipping happened


# ---- scale -------------------------------------------------------------------------------
@pytest.mark.parametrize("argv", [["--num-envs", "1", "--num-steps", "64"], ["--num-envs", "256", "--num-steps", "2"]])
def test_one_to_256_envs(argv, runs_dir):
    flags = ["--max-steps", "64", "--mini-batch-size", "64", "--ppo-epochs", "1", "--eval-interval", "32", "--quiet"]
    result = run_script("Spiking_PPO.py", *argv, *flags, "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr


def test_async_vectorization(runs_dir):
    result = run_script("PPO.py", *TINY, "--vectorization", "async", "--num-envs", "2", "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr


# ---- faults ------------------------------------------------------------------------------
@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_the_run_with_a_saved_last_checkpoint(signum, status, runs_dir):
    command = [sys.executable, str(ROOT / "Spiking_PPO.py"), "--max-steps", "1000000", "--eval-interval", "50"]
    process = subprocess.Popen([*command, "--runs-dir", str(runs_dir), "--quiet"], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().startswith("step      50")  # training is under way
    time.sleep(0.5)
    process.send_signal(signum)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == status
    (run_dir,) = runs_dir.iterdir()
    assert f"saved {run_dir}/last.pt" in out
    model, ckpt = load_agent(run_dir / "last.pt", Spiking_PPO.AGENT)
    assert ckpt["step"] >= 50
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    assert acc.Scalars("Spiking-PPO-CartPole-v0/Reward")[0].step == 50


def test_a_non_finite_loss_stops_the_run_and_leaves_the_checkpoints_alone(monkeypatch, runs_dir, capsys):
    real_update, calls, snapshots = Spiking_PPO.ppo_update, [], {}

    def update_that_diverges_the_second_time(*args, **kwargs):
        stats = real_update(*args, **kwargs)
        calls.append(1)
        if len(calls) < 2:
            return stats
        (run_dir,) = runs_dir.iterdir()  # the checkpoints as they are when the update goes wrong
        snapshots.update({name: (run_dir / name).read_bytes() for name in ("best.pt", "last.pt")})
        return {**stats, "loss": math.nan}

    monkeypatch.setattr(Spiking_PPO, "ppo_update", update_that_diverges_the_second_time)
    argv = ["--max-steps", "1024", "--eval-interval", "50", "--quiet", "--runs-dir", str(runs_dir)]
    assert Spiking_PPO.main(Spiking_PPO.AGENT, argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite loss or parameters in update 2 (rollout step 256)" in err[0]
    (run_dir,) = runs_dir.iterdir()
    for name, content in snapshots.items():
        assert (run_dir / name).read_bytes() == content, name


def test_an_absurd_learning_rate_is_caught_as_a_diverged_run(runs_dir):
    result = run_script("PPO.py", "--learning-rate", "1e30", "--max-steps", "2048", "--runs-dir", str(runs_dir))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "non-finite" in result.stderr


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """best.pt of one short run of each agent, and of the SNN on another env."""
    root = tmp_path_factory.mktemp("ckpts")
    made = {}
    for key, script, env_id in [
        ("snn", "Spiking_PPO.py", "CartPole-v0"),
        ("ann", "PPO.py", "CartPole-v0"),
        ("snn-acrobot", "Spiking_PPO.py", "Acrobot-v1"),
    ]:
        result = run_script(script, "--env-id", env_id, *TINY, "--runs-dir", str(root / key))
        assert result.returncode == 0, result.stderr
        (run_dir,) = (root / key).iterdir()
        made[key] = run_dir / "best.pt"
    return made


def refused(*argv):
    result = run_script("Spiking_PPO.py", *argv)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    return result.stderr


def test_a_checkpoint_truncated_at_a_random_byte_is_refused(checkpoints, tmp_path):
    data = checkpoints["snn"].read_bytes()
    rng = np.random.default_rng(0)
    for cut in rng.integers(1, len(data) - 1, size=3):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        assert "not a readable checkpoint" in refused("--eval-only", str(path))


def test_a_random_file_is_refused(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    assert "not a readable checkpoint" in refused("--eval-only", str(path))


def test_a_checkpoint_of_the_other_agent_or_another_env_is_refused(checkpoints):
    assert "a PPO checkpoint, not Spiking-PPO" in refused("--eval-only", str(checkpoints["ann"]))
    assert "made with --env-id Acrobot-v1, not CartPole-v0" in refused(
        "--eval-only", str(checkpoints["snn-acrobot"]), "--env-id", "CartPole-v0"
    )
    assert "made with --hidden-size 32, not 64" in refused(
        "--eval-only", str(checkpoints["snn"]), "--hidden-size", "64"
    )
    with pytest.raises(CheckpointError, match="a Spiking-PPO checkpoint, not PPO"):
        load_agent(checkpoints["snn"], PPO.AGENT)


NUMERIC_FLAGS = {  # flag: values it must refuse
    "--num-envs": ["0", "-1"],
    "--seed": ["-1"],
    "--max-steps": ["0"],
    "--num-steps": ["0"],
    "--hidden-size": ["0"],
    "--learning-rate": ["0", "-1e-3", "inf", "nan"],
    "--mini-batch-size": ["0"],
    "--ppo-epochs": ["0"],
    "--clip-param": ["0", "inf"],
    "--gamma": ["0", "1.5", "nan"],
    "--gae-lambda": ["0", "-0.5", "2"],
    "--ent-coef": ["-0.1", "inf"],
    "--vf-coef": ["-1", "nan"],
    "--eval-interval": ["0"],
    "--eval-episodes": ["0"],
    "--stop-at-return": ["inf", "nan"],
    "--T": ["0"],
    "--threads": ["0", "-2"],
}


@pytest.mark.parametrize("flag, value", [(f, v) for f, values in NUMERIC_FLAGS.items() for v in values])
def test_every_numeric_flag_is_range_checked(flag, value, runs_dir):
    stderr = refused(flag, value, "--runs-dir", str(runs_dir))
    assert flag in stderr
    assert not runs_dir.exists()


def test_every_numeric_flag_is_in_the_table():
    numeric = {
        cli.cli_flag(f.name)
        for f in dataclasses.fields(Spiking_PPO.SpikingArgs)
        if f.type in ("int", "float", "float | None")
    }
    assert numeric == set(NUMERIC_FLAGS)


def test_two_runs_started_in_the_same_second_get_their_own_directories(tmp_path):
    dirs = {run.create_run_dir(str(tmp_path), "CartPole-v0", "Spiking_PPO", 1) for _ in range(3)}
    assert len(dirs) == 3 and all(d.is_dir() for d in dirs)


def test_a_crash_while_writing_a_checkpoint_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint(path, {"step": 1})
    before = path.read_bytes()

    def crash_half_way(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr("machinery.checkpoints.torch.save", crash_half_way)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"step": 2})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left behind
