"""machinery.envs: an env's state as data, restored so that the env goes on exactly as it would have."""

import numpy as np
import pytest

from machinery.checkpoints import from_data, to_data
from machinery.envs import new_training_envs

TASKS = ["CartPole-v1", "Acrobot-v1", "Pendulum-v1", "MountainCarContinuous-v0", "InvertedPendulum-v5", "Hopper-v5"]


def random_actions(envs, count, seed):
    space = envs.action_space
    space.seed(seed)
    return [space.sample() for _ in range(count)]


def play(envs, actions):
    """Everything the envs return for these actions, episode ends and new episodes included."""
    out = []
    for action in actions:
        obs, reward, terminated, truncated, _ = envs.step(action)
        out.append((obs.copy(), reward.copy(), terminated.copy(), truncated.copy()))
    return out


# every task in this process; one classic-control and one MuJoCo task in env processes
CASES = [(env_id, "sync") for env_id in TASKS] + [("CartPole-v1", "async"), ("Hopper-v5", "async")]


@pytest.mark.parametrize("env_id, vectorization", CASES)
def test_a_restored_env_goes_on_exactly_as_the_original(env_id, vectorization):
    original = new_training_envs(env_id, 2, vectorization)
    original.reset(seed=1)
    play(original, random_actions(original, 150, seed=2))  # mid-episode, after some episode ends
    # through a checkpoint's encoding, as last.pt stores it
    saved = from_data(to_data(list(original.call("state_data"))))
    assert all("layers" in env for env in saved)

    restored = new_training_envs(env_id, 2, vectorization)
    restored.reset(seed=99)  # another state altogether, then the saved one
    restored.set_attr("restore_state", saved)
    actions = random_actions(original, 400, seed=3)  # long enough to end and start episodes
    expected, got = play(original, actions), play(restored, actions)
    for (o1, r1, te1, tr1), (o2, r2, te2, tr2) in zip(expected, got, strict=True):
        np.testing.assert_array_equal(o1, o2)
        np.testing.assert_array_equal(r1, r2)
        np.testing.assert_array_equal(te1 | tr1, te2 | tr2)
    ends = sum((te | tr).sum() for _, _, te, tr in expected)
    assert ends > 0 or env_id in ("Pendulum-v1", "MountainCarContinuous-v0", "Hopper-v5"), ends
    original.close()
    restored.close()


def test_the_state_of_an_env_is_what_is_saved_not_its_code_or_settings():
    envs = new_training_envs("CartPole-v1", 1, "sync")
    envs.reset(seed=0)
    (state,) = envs.call("state_data")
    layers = {layer["class"]: layer["state"] for layer in state["layers"]}
    assert list(layers) == ["TimeLimit", "OrderEnforcing", "PassiveEnvChecker", "CartPoleEnv"]
    assert set(layers["TimeLimit"]) >= {"_elapsed_steps"}
    assert "spec" not in layers["CartPoleEnv"] and "action_space" not in layers["CartPoleEnv"]
    assert layers["CartPoleEnv"]["_np_random"].keys() == {"__generator__"}
    assert isinstance(to_data(state), dict)  # nothing in it that a checkpoint cannot hold
