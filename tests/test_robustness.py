"""Other tasks, time limits, faults and bad arguments."""

import dataclasses
import math

import numpy as np
import pytest
import torch
from helpers import run_script

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
    step = torch.load(run_dir / "last.pt", weights_only=True)["step"]
    assert f"{run_dir}/last.pt (step {step}) is from before it" in err[0] and "best.pt" not in err[0]
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


def test_a_checkpoint_truncated_at_a_random_byte_is_refused_as_cut_off(checkpoints, tmp_path):
    data = checkpoints["snn"].read_bytes()
    rng = np.random.default_rng(0)
    # from within the 4 bytes that say "zip archive" (torch.save's format) to one byte short of the whole
    for cut in (1, 3, 4, *rng.integers(5, len(data) - 1, size=2), len(data) - 1):
        path = tmp_path / f"cut{cut}.pt"
        path.write_bytes(data[:cut])
        message = f"error: {path}: not a readable checkpoint (it ends early: cut off while copied?); copy it again\n"
        assert refused("--eval-only", str(path)) == message


def test_a_random_file_or_an_empty_one_is_refused_saying_what_to_give(tmp_path):
    path = tmp_path / "random.pt"
    path.write_bytes(np.random.default_rng(1).bytes(4096))
    assert refused("--eval-only", str(path)) == (
        f"error: {path}: not a readable checkpoint (not a pickle of plain data); give a best.pt or last.pt from a "
        "run directory of these scripts\n"
    )
    (tmp_path / "empty.pt").touch()
    assert "empty.pt: not a readable checkpoint (it ends early" in refused("--eval-only", str(tmp_path / "empty.pt"))


def test_a_checkpoint_of_the_other_agent_or_another_env_is_refused(checkpoints):
    assert "a PPO checkpoint, not Spiking-PPO" in refused("--eval-only", str(checkpoints["ann"]))
    assert "made with --env-id Acrobot-v1, not CartPole-v0" in refused(
        "--eval-only", str(checkpoints["snn-acrobot"]), "--env-id", "CartPole-v0"
    )
    assert (
        "made with --hidden-size 32, not 64: leave --hidden-size out (of the training flags, only --eval-episodes, "
        "--seed, --device, --vectorization may be given here)\n"
        in refused("--eval-only", str(checkpoints["snn"]), "--hidden-size", "64")
    )
    # as a command line writes them: a switch by its form, an optional number unset as none
    assert "made with --no-norm-adv, not --norm-adv" in refused("--eval-only", str(checkpoints["snn"]), "--norm-adv")
    assert "made with --max-grad-norm none, not 0.5" in refused(
        "--eval-only", str(checkpoints["snn"]), "--max-grad-norm", "0.5"
    )
    with pytest.raises(CheckpointError, match="a Spiking-PPO checkpoint, not PPO; use the script that trained it"):
        load_agent(checkpoints["snn"], PPO.AGENT)


def test_a_path_next_to_the_right_one_is_refused_with_the_flag_to_give(checkpoints, tmp_path):
    run_dir = checkpoints["snn"].parent
    assert f"takes a run directory, not a file: --resume {run_dir}\n" in refused("--resume", str(run_dir / "last.pt"))
    assert (
        f"a folder of runs, not a run directory; give one of its runs of Spiking_PPO.py, such as the latest: "
        f"--resume {run_dir}\n" in refused("--resume", str(run_dir.parent))
    )
    assert f"--resume {tmp_path / 'nothing'}: no such run directory" in refused("--resume", str(tmp_path / "nothing"))
    assert f"a directory, not a checkpoint file; give one of its checkpoints: {run_dir}/best.pt or last.pt" in refused(
        "--eval-only", str(run_dir)
    )


NUMERIC_FLAGS = {  # flag: values it must refuse
    "--num-envs": ["0", "-1"],
    "--seed": ["-1", "4294967296"],
    "--max-steps": ["0"],
    "--num-steps": ["0"],
    "--hidden-size": ["0"],
    "--learning-rate": ["0", "-1e-3", "inf", "nan"],
    "--mini-batch-size": ["0"],
    "--ppo-epochs": ["0"],
    "--clip-param": ["0", "inf"],
    "--gamma": ["-0.01", "1.5", "nan"],  # 0 and 1 are valid: a myopic and an undiscounted return
    "--gae-lambda": ["-0.5", "2", "inf"],  # 0 is valid: one-step TD advantages
    "--ent-coef": ["-0.1", "inf"],
    "--vf-coef": ["-1", "nan"],
    "--eval-interval": ["0"],
    "--eval-episodes": ["0"],
    "--cost-interval": ["-1"],
    "--stop-at-return": ["inf", "nan"],
    "--init-log-std": ["inf", "-inf", "nan"],
    "--T": ["0"],
    "--readout-tau": ["0", "0.5", "nan", "inf"],  # below 1 the decay per step, 1 - 1/tau, is negative
    "--hidden-layers": ["0"],
    "--adam-eps": ["0", "-1e-5"],
    "--target-kl": ["0", "nan"],
    "--max-grad-norm": ["0", "-0.5", "inf"],
    "--obs-clip": ["0", "-10"],
    "--reward-clip": ["0", "inf"],
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


# ---- what the machine cannot honour ------------------------------------------------------
@pytest.mark.parametrize(
    "argv, message",
    [
        (["--env-id", "CartPole"], "--env-id 'CartPole' has no version: name one, e.g. 'CartPole-v1'"),
        (["--env-id", "nosuchmodule:Foo-v0"], "ModuleNotFoundError: No module named 'nosuchmodule'"),
        (["--env-id", "::"], "--env-id '::'"),
        (["--seed", "4294967296"], "--seed must be in [0, 2**32 - 1]"),
        (["--threads", "4096"], "--threads 4096 is more than the"),
        (["--num-envs", "100000000"], "--num-envs (training envs)"),
        (["--hidden-size", "10000000"], "--hidden-size"),
        (["--T", "1000000", "--hidden-size", "1000"], "x --T (temporaries)"),
        (["--num-steps", "2000000000"], "--num-envs x --num-steps (the rollout)"),
        (["--eval-episodes", "1000000000"], "--eval-episodes"),
    ],
)
def test_what_the_machine_cannot_honour_is_refused_before_anything_is_created(argv, message, runs_dir):
    stderr = refused(*argv, "--runs-dir", str(runs_dir))
    assert message in stderr
    assert not runs_dir.exists()


def test_an_env_id_in_gymnasiums_module_syntax_trains(runs_dir):
    env_id = "gymnasium.envs.classic_control.cartpole:CartPole-v1"
    result = run_script("PPO.py", "--env-id", env_id, *TINY, "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[0].split() for line in result.stdout.splitlines() if line.startswith("step")] == [
        ["step", "32"],
        ["step", "64"],
    ]


def test_a_runs_dir_that_is_a_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "a-file"
    path.write_text("keep me")
    stderr = refused("--runs-dir", str(path))
    assert f"--runs-dir {path}" in stderr
    assert path.read_text() == "keep me"


def test_a_runs_dir_on_a_read_only_file_system_is_refused_in_one_line(runs_dir, monkeypatch, capsys):
    def read_only(self, *args, **kwargs):
        raise OSError(30, "Read-only file system", str(self))

    monkeypatch.setattr(Spiking_PPO.run.Path, "mkdir", read_only)
    assert Spiking_PPO.main(PPO.AGENT, ["--runs-dir", str(runs_dir), *TINY]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"error: --runs-dir {runs_dir}: cannot create") and "Read-only file system" in line


def test_a_disk_that_fills_up_mid_run_ends_it_in_one_line_and_keeps_what_was_saved(runs_dir, monkeypatch, capsys):
    import errno

    real_save, saved = torch.save, []

    def save_until_the_disk_is_full(obj, f):
        if len(saved) == 3:  # last.pt at step 0; best.pt and last.pt at step 32; then the disk is full
            f.write(b"the start of a checkpoint")
            raise OSError(errno.ENOSPC, "No space left on device")
        saved.append(obj["step"])
        real_save(obj, f)

    monkeypatch.setattr("machinery.checkpoints.torch.save", save_until_the_disk_is_full)
    assert Spiking_PPO.main(PPO.AGENT, ["--runs-dir", str(runs_dir), *TINY, "--max-steps", "128"]) == 1
    (line,) = capsys.readouterr().err.strip().splitlines()
    (run_dir,) = runs_dir.iterdir()
    assert line.startswith("error: ") and f"{run_dir}/" in line and "No space left on device" in line
    assert torch.load(run_dir / "last.pt", weights_only=True)["step"] == 32  # whole, and the last one written
    assert not list(run_dir.glob("*.tmp"))


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda c: c["model"].update({"actor.0.weight": torch.zeros(3, 3)}), "its weights do not fit"),
        (lambda c: c["args"].update({"no_such_flag": 1}), "its arguments do not fit this version's flags"),
    ],
)
def test_resume_refuses_a_last_checkpoint_that_does_not_fit_in_one_line(spoil, message, runs_dir):
    assert run_script("Spiking_PPO.py", *TINY, "--runs-dir", str(runs_dir)).returncode == 0
    (run_dir,) = runs_dir.iterdir()
    ckpt = torch.load(run_dir / "last.pt", weights_only=True)
    spoil(ckpt)
    torch.save(ckpt, run_dir / "last.pt")
    stderr = refused("--resume", str(run_dir), "--max-steps", "128")
    assert message in stderr and str(run_dir / "last.pt") in stderr


def test_a_checkpoint_survives_a_power_loss_after_its_rename(tmp_path, monkeypatch):
    """The file is fsynced before the rename and its directory after it (else the rename may be lost)."""
    import os
    import stat

    synced = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(stat.S_ISDIR(os.fstat(fd).st_mode)) or real_fsync(fd))
    save_checkpoint(tmp_path / "last.pt", {"step": 1})
    assert synced == [False, True]
