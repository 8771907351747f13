"""Both scripts through their command line, as a user runs them."""

import dataclasses

import pytest
import torch
from helpers import run_script
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import PPO
import Spiking_PPO
from machinery.checkpoints import CheckpointError, load_agent

SHORT_RUN = ["--max-steps", "300", "--eval-interval", "100", "--eval-episodes", "3", "--ppo-epochs", "2"]


def only_run_dir(runs_dir):
    dirs = list(runs_dir.iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def scalars(run_dir, tag):
    acc = EventAccumulator(str(run_dir))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


@pytest.mark.parametrize("script, agent", [("Spiking_PPO.py", Spiking_PPO.AGENT), ("PPO.py", PPO.AGENT)])
def test_a_short_run_logs_rewards_and_saves_checkpoints_that_load(script, agent, runs_dir):
    result = run_script(script, *SHORT_RUN, "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(runs_dir)
    assert run_dir.name.startswith(f"CartPole-v0__{script[:-3]}__1__")

    rewards = scalars(run_dir, f"{agent.name}-CartPole-v0/Reward")
    assert [step for step, _ in rewards] == [100, 200, 300]
    assert all(1 <= value <= 200 for _, value in rewards)
    assert [line.split("|")[0].split() for line in result.stdout.splitlines() if line.startswith("step")] == [
        ["step", "100"],
        ["step", "200"],
        ["step", "300"],
    ]

    model, ckpt = load_agent(run_dir / "best.pt", agent)
    assert ckpt["eval_mean"] == pytest.approx(max(value for _, value in rewards))
    assert ckpt["step"] in (100, 200, 300)
    dist, value = model(torch.zeros(2, 4))
    assert dist.loc.shape == (2, 2) and value.shape == (2, 1)
    _, last = load_agent(run_dir / "last.pt", agent)
    assert last["step"] == 384  # --max-steps 300 in whole rollouts of 128


def test_same_seed_gives_the_same_eval_returns(runs_dir):
    outputs = [run_script("Spiking_PPO.py", *SHORT_RUN, "--runs-dir", str(runs_dir / str(i))) for i in range(2)]
    curves = [scalars(only_run_dir(runs_dir / str(i)), "Spiking-PPO-CartPole-v0/Reward") for i in range(2)]
    assert all(o.returncode == 0 for o in outputs)
    assert curves[0] == curves[1]


def test_a_checkpoint_of_one_agent_is_refused_by_the_other(runs_dir):
    assert run_script("PPO.py", *SHORT_RUN, "--runs-dir", str(runs_dir)).returncode == 0
    with pytest.raises(CheckpointError, match="a PPO checkpoint, not Spiking-PPO"):
        load_agent(only_run_dir(runs_dir) / "best.pt", Spiking_PPO.AGENT)


BAD_INPUTS = [
    (["--num-envs", "0"], "--num-envs must be"),
    (["--max-steps", "-5"], "--max-steps must be"),
    (["--eval-episodes", "0"], "--eval-episodes must be"),
    (["--mini-batch-size", "1024"], "--mini-batch-size 1024 is larger than a rollout"),
    (["--num-envs", "two"], "--num-envs: invalid int value"),
    (["--env-id", "NoSuchEnv-v0"], "--env-id 'NoSuchEnv-v0'"),
    (["--env-id", "Blackjack-v1"], "is not a flat Box"),
    (["--env-id", "FrozenLake-v1"], "is not a flat Box"),
]


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
@pytest.mark.parametrize("argv, message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_creates_no_run_directory(script, argv, message, runs_dir):
    result = run_script(script, *argv, "--runs-dir", str(runs_dir))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not runs_dir.exists()


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_sets_the_torch_threads_training_runs_on(threads, runs_dir, monkeypatch):
    seen = []
    real_update = Spiking_PPO.ppo_update
    monkeypatch.setattr(
        Spiking_PPO, "ppo_update", lambda *a, **k: seen.append(torch.get_num_threads()) or real_update(*a, **k)
    )
    argv = ["--max-steps", "8", "--num-steps", "4", "--mini-batch-size", "4", "--threads", str(threads)]
    before = torch.get_num_threads()
    torch.set_num_threads(3 - threads)  # the other count, so the flag has something to change
    try:
        assert Spiking_PPO.main(PPO.AGENT, [*argv, "--quiet", "--runs-dir", str(runs_dir)]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [threads, threads]


def test_the_snn_flags_are_refused_by_the_ann(runs_dir):
    result = run_script("PPO.py", "--T", "8", "--runs-dir", str(runs_dir))
    assert result.returncode == 2 and "unrecognized arguments: --T 8" in result.stderr


def test_fast_and_reference_paths_give_the_same_eval_curve(runs_dir):
    """Same seed, same curve for the first updates; later, rounding differences compound (see README)."""
    argv = ["--max-steps", "384", "--eval-interval", "50", "--runs-dir"]
    for impl in ("fast", "reference"):
        assert run_script("Spiking_PPO.py", *argv, str(runs_dir / impl), "--snn-impl", impl).returncode == 0
    fast, reference = (
        scalars(only_run_dir(runs_dir / impl), "Spiking-PPO-CartPole-v0/Reward") for impl in ("fast", "reference")
    )
    assert len(fast) == 7 and fast == reference


def test_stop_at_return_stops_at_the_evaluation_that_reaches_it(runs_dir):
    # evaluations at rollout boundaries (128, 256, ...); any return reaches 1
    result = run_script("PPO.py", "--eval-interval", "128", "--stop-at-return", "1", "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[0].split() for line in result.stdout.splitlines() if line.startswith("step")] == [
        ["step", "128"]
    ]
    assert "done: 128 steps" in result.stdout


@pytest.mark.parametrize(
    "script, says, not_says",
    [("PPO.py", "ANN actor-critic", "spiking actor-critic"), ("Spiking_PPO.py", "spiking actor-critic", "ANN")],
)
def test_help_describes_the_scripts_own_agent_and_shows_what_path_flags_take(script, says, not_says):
    result = run_script(script, "--help")
    assert result.returncode == 0
    first_lines = " ".join(result.stdout.split("\n\n")[1].split())  # the description, after the usage
    assert says in first_lines and not_says not in first_lines, first_lines
    assert "--resume RUN_DIR" in result.stdout and "--eval-only CHECKPOINT" in result.stdout
    assert ("--T T" in result.stdout) == (script == "Spiking_PPO.py")


# CleanRL's published settings, written out here from its scripts (ppo.py, ppo_continuous_action.py)
# rather than read from PRESETS: batch = num_envs x num_steps, mini-batch = batch / num_minibatches.
CLEANRL_DISCRETE = dict(num_envs=4, num_steps=128, learning_rate=2.5e-4, mini_batch_size=512 // 4, ppo_epochs=4)
CLEANRL_DISCRETE |= dict(ent_coef=0.01, norm_obs=False, norm_reward=False)
CLEANRL_BOX = dict(num_envs=1, num_steps=2048, learning_rate=3e-4, mini_batch_size=2048 // 32, ppo_epochs=10)
CLEANRL_BOX |= dict(ent_coef=0.0, norm_obs=True, obs_clip=10.0, norm_reward=True, reward_clip=10.0)
CLEANRL_BOTH = dict(anneal_lr=True, gamma=0.99, gae_lambda=0.95, norm_adv=True, clip_param=0.2, clip_vloss=True)
CLEANRL_BOTH |= dict(max_grad_norm=0.5, adam_eps=1e-5, ortho_init=True, hidden_size=64, hidden_layers=2)
CLEANRL_BOTH |= dict(joint_ratio=True, truncation_as_termination=True, target_kl=None)
CLEANRL_BOTH |= dict(vf_coef=0.5 * 0.5)  # CleanRL's vf_coef 0.5 times the 0.5 its value loss carries


def resolved(argv):
    args = Spiking_PPO.parse_args(Spiking_PPO.SpikingArgs, argv)
    return Spiking_PPO.with_preset(args, Spiking_PPO.given_flags(Spiking_PPO.SpikingArgs, argv))


@pytest.mark.parametrize("env_id, published", [("CartPole-v1", CLEANRL_DISCRETE), ("HalfCheetah-v5", CLEANRL_BOX)])
def test_the_cleanrl_preset_resolves_to_cleanrls_published_settings(env_id, published):
    args = resolved(["--preset", "cleanrl", "--env-id", env_id])
    assert {k: getattr(args, k) for k in published | CLEANRL_BOTH} == published | CLEANRL_BOTH
    assert args.T == 16  # the SNN's own flags keep their defaults


def test_cleanrl_bootstrap_is_cleanrl_with_the_bootstrap_at_time_limits():
    ours, cleanrl = (resolved(["--preset", p, "--env-id", "Pendulum-v1"]) for p in ("cleanrl-bootstrap", "cleanrl"))
    assert ours.truncation_as_termination is False and cleanrl.truncation_as_termination is True
    assert dataclasses.replace(ours, preset="cleanrl", truncation_as_termination=True) == cleanrl


def test_flags_given_override_the_preset_and_the_tutorial_preset_is_the_defaults():
    args = resolved(["--preset", "cleanrl", "--env-id", "HalfCheetah-v5", "--learning-rate", "1e-4", "--no-norm-adv"])
    assert args.learning_rate == 1e-4 and args.norm_adv is False and args.ppo_epochs == 10
    assert resolved(["--preset", "tutorial"]) == Spiking_PPO.SpikingArgs()


def test_a_preset_that_contradicts_a_flag_given_is_refused_in_one_line(runs_dir):
    # --mini-batch-size 4096 fits no CleanRL rollout of 1 x 2048: checked after the preset is applied
    result = run_script(
        "PPO.py",
        "--preset",
        "cleanrl",
        "--env-id",
        "Pendulum-v1",
        "--mini-batch-size",
        "4096",
        "--runs-dir",
        str(runs_dir),
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--mini-batch-size 4096 is larger than a rollout" in result.stderr
    assert not runs_dir.exists()
