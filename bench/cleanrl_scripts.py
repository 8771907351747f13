"""CleanRL's own PPO scripts, run from a clone of CleanRL under this project's gymnasium 1.x: what
bench/throughput.py (their speed) and bench/cleanrl_runs.py (their returns) share.

Nothing of CleanRL is in this repository: `--cleanrl-dir` names the root of a clone
(`git clone https://github.com/vwxyzjn/cleanrl`, then `pip install tyro`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from machinery.cli import UsageError

# The script CleanRL publishes each task's PPO numbers with.
SCRIPTS = {
    "CartPole-v1": "cleanrl/ppo.py",
    "HalfCheetah-v5": "cleanrl/ppo_continuous_action.py",
    "Hopper-v5": "cleanrl/ppo_continuous_action.py",
}
# CleanRL's ppo_continuous_action.py calls TransformObservation(env, f), the gymnasium 0.29 form; gymnasium
# 1.x also wants the observation space, and None keeps the env's, as 0.29 did. The script itself is run
# unchanged, as its __main__.
RUNNER = """
import runpy, sys
import gymnasium as gym
class TransformObservation(gym.wrappers.TransformObservation):
    def __init__(self, env, func, observation_space=None):
        super().__init__(env, func, observation_space)
gym.wrappers.TransformObservation = TransformObservation
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def command(checkout: Path, task: str, *flags: str) -> list[str]:
    """The command that runs CleanRL's script for `task` from `checkout`, with these flags of its own."""
    return [sys.executable, "-c", RUNNER, str(checkout / SCRIPTS[task]), "--env-id", task, *flags]


def check_checkout(checkout: Path, tasks: list[str]) -> None:
    """A UsageError unless `checkout` holds CleanRL's script for each of `tasks`."""
    for task in tasks:
        if not (checkout / SCRIPTS[task]).is_file():
            raise UsageError(f"--cleanrl-dir {checkout}: no {SCRIPTS[task]} there (give the root of a CleanRL clone)")
