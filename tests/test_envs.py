"""machinery.envs: an env's state as data, restored so that the env goes on exactly as it would have."""

import math

import gymnasium as gym
import numpy as np
import pytest
from helpers import ENDLESS_PENDULUM, FLAT_FROZEN_LAKE, short_run

from machinery import envs as envs_module
from machinery.checkpoints import from_data, to_data
from machinery.cli import UsageError
from machinery.envs import Normalization, finished_episodes, new_training_envs

PLAIN = Normalization(obs_clip=None, reward_clip=None, gamma=0.99)
NORMALIZED = Normalization(obs_clip=10.0, reward_clip=10.0, gamma=0.99)  # --norm-obs --norm-reward

TASKS = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0", "InvertedPendulum-v5", "Hopper-v5"]


def random_actions(envs, count, seed):
    space = envs.action_space
    space.seed(seed)
    return [space.sample() for _ in range(count)]


def play(envs, actions):
    """Everything the envs return for these actions, episode ends and new episodes included, and the
    (return, length) of each episode that ended."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, info = envs.step(action)
        out.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy(), finished_episodes(info)))
    return out


# every task in this process; one classic-control and one MuJoCo task in env processes; and under
# the normalization wrappers, whose running statistics must come back too
CASES = [(env_id, "sync", PLAIN) for env_id in TASKS] + [("CartPole-v1", "async", PLAIN), ("Hopper-v5", "async", PLAIN)]
CASES += [("Hopper-v5", "sync", NORMALIZED), ("Pendulum-v1", "async", NORMALIZED)]
CASES += [(FLAT_FROZEN_LAKE, "sync", PLAIN)]  # a state with an array of bytes in it


@pytest.mark.parametrize("env_id, vectorization, norm", CASES)
def test_a_restored_env_goes_on_exactly_as_the_original(env_id, vectorization, norm):
    original = new_training_envs(env_id, 2, vectorization, norm)
    original.reset(seed=1)
    play(original, random_actions(original, 150, seed=2))  # mid-episode, after some episode ends
    # through a checkpoint's encoding, as last.pt stores it
    saved = from_data(to_data(list(original.call("state_data"))))
    assert all("layers" in env for env in saved)

    restored = new_training_envs(env_id, 2, vectorization, norm)
    restored.reset(seed=99)  # another state altogether, then the saved one
    restored.set_attr("restore_state", saved)
    actions = random_actions(original, 400, seed=3)  # long enough to end and start episodes
    expected, got = play(original, actions), play(restored, actions)
    for (o1, r1, te1, tr1, ep1), (o2, r2, te2, tr2, ep2) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1 | tr1, te2 | tr2)
        assert ep1 == ep2  # the episodes under way at the save are counted from their start
    ends = sum((te | tr).sum() for _, _, te, tr, _ in expected)
    assert ends > 0 or env_id in ("Pendulum-v1", "MountainCarContinuous-v0", "Hopper-v5"), ends
    original.close()
    restored.close()


def test_the_state_of_an_env_is_what_is_saved_not_its_code_or_settings():
    envs = new_training_envs("CartPole-v1", 1, "sync", PLAIN)
    envs.reset(seed=0)
    (state,) = envs.call("state_data")
    layers = {layer["class"]: layer["state"] for layer in state["layers"]}
    assert list(layers) == [
        "RecordEpisodeStatistics",
        "TimeLimit",
        "OrderEnforcing",
        "PassiveEnvChecker",
        "CartPoleEnv",
    ]
    assert set(layers["RecordEpisodeStatistics"]) >= {"episode_returns", "episode_lengths"}
    assert set(layers["TimeLimit"]) >= {"_elapsed_steps"}
    assert "spec" not in layers["CartPoleEnv"] and "action_space" not in layers["CartPoleEnv"]
    assert layers["CartPoleEnv"]["_np_random"].keys() == {"__generator__"}
    assert isinstance(to_data(state), dict)  # nothing in it that a checkpoint cannot hold


def test_observation_statistics_are_numpys_over_the_stream_the_envs_saw():
    """--norm-obs: each env's running mean and variance, merged, equal numpy's over every raw observation
    the envs returned (resets and episodes' last ones included); the normalized observation is
    (obs - mean) / sqrt(var + 1e-8), clipped."""
    raw_envs = new_training_envs("Pendulum-v1", 3, "sync", PLAIN)
    normalized = new_training_envs("Pendulum-v1", 3, "sync", Normalization(obs_clip=1.5, reward_clip=None, gamma=0.99))
    raw = [raw_envs.reset(seed=4)[0]]
    normalized.reset(seed=4)
    for action in random_actions(raw_envs, 250, seed=5):  # past an episode's end (200 steps)
        obs, _, terminated, truncated, info = raw_envs.step(action)
        got, *_ = normalized.step(action)
        if (terminated | truncated).any():  # the wrapper saw the last observation, then the reset one
            raw.append(np.stack(info["final_obs"][terminated | truncated]))
        raw.append(obs)
    stream = np.concatenate(raw)
    stats = envs_module.obs_statistics(normalized)
    np.testing.assert_allclose(stats["mean"], stream.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stats["var"], stream.var(axis=0), rtol=1e-4, atol=1e-6)
    # the last step's observations, normalized by each env's own statistics as they stood then
    per_env = normalized.get_attr("obs_rms")
    for i, rms in enumerate(per_env):
        expected = np.clip((raw[-1][i] - rms.mean) / np.sqrt(rms.var + 1e-8), -1.5, 1.5)
        np.testing.assert_allclose(got[i], expected, rtol=1e-5, atol=1e-6)
    assert (np.abs(got) == 1.5).any() or np.abs(got).max() < 1.5


@pytest.mark.parametrize("env_id", ["CartPole-v1", "HalfCheetah-v5"])  # float32 and float64 observations
def test_the_normalized_envs_compute_gymnasiums_wrappers_bit_for_bit(env_id):
    """The training envs update their running statistics by `RunningMeanStdOfSteps`; the same stack of
    gymnasium's wrappers alone, on the same actions, returns the same bits, episode ends included."""

    def gymnasiums_own():
        env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id))
        env = gym.wrappers.NormalizeObservation(env)
        env = gym.wrappers.TransformObservation(env, lambda o: np.clip(o, -10, 10), env.observation_space)
        return gym.wrappers.ClipReward(gym.wrappers.NormalizeReward(env, gamma=0.99), -10, 10)

    ours = new_training_envs(env_id, 2, "sync", NORMALIZED)
    theirs = envs_module.make_envs([gymnasiums_own] * 2)
    np.testing.assert_array_equal(ours.reset(seed=3)[0], theirs.reset(seed=3)[0])
    ended = 0
    for action in random_actions(ours, 300, seed=4):  # CartPole's random episodes end every 20 steps or so
        (obs, reward, terminated, truncated, _), expected = ours.step(action), theirs.step(action)
        np.testing.assert_array_equal(obs, expected[0])
        np.testing.assert_array_equal(reward, expected[1])
        ended += (terminated | truncated).sum()
    assert ended > 0 or env_id == "HalfCheetah-v5"
    for name in ("obs_rms", "return_rms"):
        for fast, slow in zip(ours.get_attr(name), theirs.get_attr(name), strict=True):
            assert isinstance(fast, envs_module.RunningMeanStdOfSteps)
            for attribute in ("mean", "var", "count"):
                np.testing.assert_array_equal(getattr(fast, attribute), getattr(slow, attribute))


def test_running_statistics_of_steps_update_as_gymnasiums_from_any_batch():
    rng = np.random.default_rng(0)
    fast, slow = envs_module.RunningMeanStdOfSteps(shape=(3,)), gym.wrappers.utils.RunningMeanStd(shape=(3,))
    for rows in (1, 1, 5, 1, 2, 1):
        batch = rng.normal(size=(rows, 3)) * 10
        fast.update(batch)
        slow.update(batch)
        np.testing.assert_array_equal(fast.mean, slow.mean)
        np.testing.assert_array_equal(fast.var, slow.var)
    assert fast.count == slow.count == 1e-4 + 11


def test_frozen_eval_envs_use_the_statistics_they_are_given_and_keep_them():
    norm = Normalization(obs_clip=10.0, reward_clip=10.0, gamma=0.99)
    eval_envs = envs_module.new_eval_envs("Pendulum-v1", 2, "sync", norm)
    statistics = {"mean": np.array([0.5, -0.5, 1.0]), "var": np.array([4.0, 0.25, 1.0]), "count": 100.0}
    envs_module.use_obs_statistics(eval_envs, statistics)
    raw = envs_module.new_envs("Pendulum-v1", 2)
    expected_raw, _ = raw.reset(seed=8)
    got, _ = eval_envs.reset(seed=8)
    np.testing.assert_allclose(got, (expected_raw - statistics["mean"]) / np.sqrt(statistics["var"] + 1e-8), rtol=1e-5)
    action = np.zeros((2, 1), dtype=np.float32)
    expected_obs, expected_reward, *_ = raw.step(action)
    got, reward, *_ = eval_envs.step(action)
    np.testing.assert_array_equal(reward, expected_reward)  # evaluation reports the env's own rewards
    after = envs_module.obs_statistics(eval_envs)
    np.testing.assert_array_equal(after["mean"], statistics["mean"])  # frozen: stepping changed nothing
    np.testing.assert_allclose(got, (expected_obs - statistics["mean"]) / np.sqrt(statistics["var"] + 1e-8), rtol=1e-5)


def test_training_envs_report_each_finished_episode_in_the_envs_own_rewards():
    """Under --norm-reward the rewards training sees are scaled; the episodes' returns are not. A
    CartPole-v1 episode earns 1 a step, so its return is its length; the lengths add up to the steps."""
    envs = new_training_envs("CartPole-v1", 3, "sync", NORMALIZED)
    envs.reset(seed=0)
    steps, rewards, episodes, lengths_under_way = 300, [], [], np.zeros(3, dtype=int)
    for action in random_actions(envs, steps, seed=1):
        _, reward, terminated, truncated, info = envs.step(action)
        rewards.append(reward)
        episodes += finished_episodes(info)
        lengths_under_way = np.where(terminated | truncated, 0, lengths_under_way + 1)
    assert len(episodes) > 20 and not np.allclose(np.concatenate(rewards), 1.0)  # scaled, as training sees them
    assert all(episode_return == length for episode_return, length in episodes)
    assert sum(length for _, length in episodes) + lengths_under_way.sum() == 3 * steps
    envs.close()


def test_the_solved_return_is_gymnasiums_reward_threshold_unless_one_is_given():
    assert envs_module.solved_return("CartPole-v0") == 195.0
    assert envs_module.solved_return("CartPole-v1") == 475.0
    assert envs_module.solved_return("Acrobot-v1") == -100.0
    assert envs_module.solved_return("CartPole-v1", 300.0) == 300.0
    assert envs_module.solved_return("Pendulum-v1", -200.0) == -200.0
    assert envs_module.solved_return("Pendulum-v1") is None  # no threshold in the registry
    with pytest.raises(UsageError, match="NameNotFound"):
        envs_module.solved_return("Nope-v1")
    for bad in (math.nan, math.inf, -math.inf):
        with pytest.raises(UsageError, match=f"--target must be a finite return, got {bad}"):
            envs_module.solved_return("CartPole-v1", bad)


def test_training_on_an_env_without_a_time_limit_notes_that_an_evaluation_may_never_end(runs_dir):
    no_evaluation = ["--eval-interval", "100000"]  # one would never end
    _, endless = short_run("PPO.py", runs_dir / "endless", "--env-id", ENDLESS_PENDULUM, *no_evaluation)
    assert endless.stderr.count(f"note: {ENDLESS_PENDULUM} has no time limit") == 1, endless.stderr
    _, limited = short_run("PPO.py", runs_dir / "limited", "--env-id", "Pendulum-v1", *no_evaluation)
    assert "time limit" not in limited.stderr


def test_mujocos_deprecation_warning_on_gymnasiums_models_is_dropped_wherever_the_env_is_made(recwarn):
    # env_spec installs MuJoCo's warning handler under catch_warnings; envs made after it, by any path,
    # must not warn of gymnasium's own model, while MuJoCo's other warnings still reach Python's
    envs_module.env_spec("HalfCheetah-v5")
    envs_module.new_envs("HalfCheetah-v5", 1).close()
    envs_module.mujoco_warning("a warning of the user's own model")
    assert [str(w.message) for w in recwarn] == ["MuJoCo: a warning of the user's own model"]
