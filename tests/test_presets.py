"""machinery.presets: --preset resolves to CleanRL's published settings, and flags given override it."""

import dataclasses
import re

import pytest
from helpers import ROOT, run_script

from machinery.cli import given_flags, parse_args
from machinery.presets import PRESETS, with_preset
from Spiking_PPO import Args, SpikingArgs

# CleanRL's published settings, written out here from its scripts (ppo.py, ppo_continuous_action.py)
# rather than read from presets.PRESETS: batch = num_envs x num_steps, mini-batch = batch / num_minibatches,
# and --max-steps counts rollout steps of all envs where CleanRL's total_timesteps counts env steps.
CLEANRL_DISCRETE = dict(num_envs=4, num_steps=128, learning_rate=2.5e-4, mini_batch_size=512 // 4, ppo_epochs=4)
CLEANRL_DISCRETE |= dict(ent_coef=0.01, norm_obs=False, norm_reward=False, max_steps=500_000 // 4)
CLEANRL_BOX = dict(num_envs=1, num_steps=2048, learning_rate=3e-4, mini_batch_size=2048 // 32, ppo_epochs=10)
CLEANRL_BOX |= dict(ent_coef=0.0, norm_obs=True, obs_clip=10.0, norm_reward=True, reward_clip=10.0)
CLEANRL_BOX |= dict(max_steps=1_000_000 // 1)
CLEANRL_BOTH = dict(anneal_lr=True, gamma=0.99, gae_lambda=0.95, norm_adv=True, clip_param=0.2, clip_vloss=True)
CLEANRL_BOTH |= dict(max_grad_norm=0.5, adam_eps=1e-5, ortho_init=True, hidden_size=64, hidden_layers=2)
CLEANRL_BOTH |= dict(joint_ratio=True, truncation_as_termination=True, target_kl=None)
CLEANRL_BOTH |= dict(vf_coef=0.5 * 0.5)  # CleanRL's vf_coef 0.5 times the 0.5 its value loss carries


def resolved(argv):
    return with_preset(parse_args(SpikingArgs, argv), given_flags(SpikingArgs, argv))


@pytest.mark.parametrize("env_id, published", [("CartPole-v1", CLEANRL_DISCRETE), ("HalfCheetah-v5", CLEANRL_BOX)])
def test_the_cleanrl_preset_resolves_to_cleanrls_published_settings(env_id, published):
    args = resolved(["--preset", "cleanrl", "--env-id", env_id])
    assert {k: getattr(args, k) for k in published | CLEANRL_BOTH} == published | CLEANRL_BOTH
    assert args.T == 16  # the SNN's own flags keep their defaults


@pytest.mark.parametrize("env_id", ["CartPole-v1", "HalfCheetah-v5"])
def test_the_cleanrl_preset_evaluates_50_times_over_its_budget_and_flags_override_both(env_id):
    args = resolved(["--preset", "cleanrl", "--env-id", env_id])
    assert args.max_steps / args.eval_interval == 50  # CleanRL's own scripts never evaluate
    given = resolved(["--preset", "cleanrl", "--env-id", env_id, "--eval-interval", "100", "--max-steps", "1e3"])
    assert (given.eval_interval, given.max_steps) == (100, 1000)


def test_cleanrl_bootstrap_is_cleanrl_with_the_bootstrap_at_time_limits():
    ours, cleanrl = (resolved(["--preset", p, "--env-id", "Pendulum-v1"]) for p in ("cleanrl-bootstrap", "cleanrl"))
    assert ours.truncation_as_termination is False and cleanrl.truncation_as_termination is True
    assert dataclasses.replace(ours, preset="cleanrl", truncation_as_termination=True) == cleanrl


def test_snn_tuned_is_the_tutorial_with_soft_reset_on_discrete_tasks_and_cleanrl_bootstrap_with_tau_16_on_box_ones():
    discrete = resolved(["--preset", "snn-tuned", "--env-id", "Acrobot-v1"])
    assert discrete.soft_reset is True
    assert dataclasses.replace(discrete, preset="tutorial", soft_reset=False) == SpikingArgs(env_id="Acrobot-v1")
    box, bootstrap = (resolved(["--preset", p, "--env-id", "Pendulum-v1"]) for p in ("snn-tuned", "cleanrl-bootstrap"))
    assert box.readout_tau == 16.0 and bootstrap.readout_tau == 2.0
    assert dataclasses.replace(box, preset="cleanrl-bootstrap", readout_tau=2.0) == bootstrap


def test_the_ann_takes_a_presets_ppo_settings_and_leaves_the_spiking_ones():
    argv = ["--preset", "snn-tuned", "--env-id", "Pendulum-v1"]
    ann, snn = with_preset(parse_args(Args, argv), given_flags(Args, argv)), resolved(argv)
    assert not hasattr(ann, "readout_tau")
    assert {k: getattr(snn, k) for k in dataclasses.asdict(ann)} == dataclasses.asdict(ann)


def test_every_preset_names_only_flags_the_spiking_agent_has():  # a misspelt name would silently do nothing
    names = {f.name for f in dataclasses.fields(SpikingArgs)}
    assert all(set(values) <= names for kinds in PRESETS.values() for values in kinds.values())


def test_flags_given_override_the_preset_and_the_tutorial_preset_is_the_defaults():
    args = resolved(["--preset", "cleanrl", "--env-id", "HalfCheetah-v5", "--learning-rate", "1e-4", "--no-norm-adv"])
    assert args.learning_rate == 1e-4 and args.norm_adv is False and args.ppo_epochs == 10
    assert resolved(["--preset", "tutorial"]) == SpikingArgs()
    clipped, unclipped = (resolved(["--preset", "cleanrl", *more]) for more in ([], ["--max-grad-norm", "None"]))
    assert clipped.max_grad_norm == 0.5 and unclipped.max_grad_norm is None  # an optional number unset by `none`


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


def test_the_mini_batch_is_held_to_the_rollout_the_preset_gives_not_to_the_tutorials(runs_dir):
    # at --preset cleanrl on CartPole-v1: 4 envs x 32 steps = 128 = CleanRL's mini-batch, a valid run,
    # which the tutorial's mini-batch of 256 would not fit
    flags = ["--preset", "cleanrl", "--env-id", "CartPole-v1", "--num-steps", "32", "--runs-dir", str(runs_dir)]
    result = run_script("Spiking_PPO.py", *flags, "--max-steps", "32", "--eval-interval", "32", "--quiet")
    assert result.returncode == 0, result.stderr
    result = run_script("PPO.py", "--preset", "cleanrl", "--env-id", "CartPole-v1", "--num-steps", "16")
    assert result.returncode == 2
    assert "--mini-batch-size 128 is larger than a rollout (--num-envs x --num-steps = 64)" in result.stderr


def test_the_readmes_table_of_the_cleanrl_preset_is_what_it_resolves_to():
    """README, "Beyond the tutorial": the table of `--preset cleanrl`, a column per kind of action
    space, row by row against what the preset resolves to on CartPole-v1 and HalfCheetah-v5."""
    readme = (ROOT / "README.md").read_text()
    table = readme.split("| flag | `cleanrl`, Discrete", 1)[1].split("\n\n", 1)[0]
    shown = set()
    for line in table.splitlines()[2:]:
        flags_cell, *columns = (cell.strip() for cell in line.strip("|").split("|"))
        names = [flag.replace("-", "_") for flag in re.findall(r"`--([a-z-]+)`", flags_cell)]
        clip = re.search(r"\(clip (\S+) each\)", flags_cell)  # --obs-clip and --reward-clip, in one
        for env_id, column in zip(("CartPole-v1", "HalfCheetah-v5"), columns, strict=True):
            args = resolved(["--preset", "cleanrl", "--env-id", env_id])
            values = [re.sub(r" \(.*\)", "", value) for value in column.split(", ")]  # "128 (4 mini-batches)"
            for name, value in zip(names, values, strict=True):
                expected = value == "on" if value in ("on", "off") else float(value)
                assert getattr(args, name) == expected, (name, env_id)
            if clip:
                assert (args.obs_clip, args.reward_clip) == (float(clip[1]), float(clip[1]))
        shown |= set(names) | ({"obs_clip", "reward_clip"} if clip else set())
    assert shown == set(PRESETS["cleanrl"]["Discrete"]) | set(PRESETS["cleanrl"]["Box"])
