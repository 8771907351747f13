"""bench/reproduce.py: the budgets it trains for and the results file it keeps."""

import json
import sys
from multiprocessing import Pool

from helpers import ROOT

sys.path.insert(0, str(ROOT / "bench"))
import reproduce  # noqa: E402


def test_a_task_budget_in_environment_steps_becomes_rollout_steps_of_the_presets_envs():
    args = reproduce.parse_cli([])
    cartpole = reproduce.command(args, "CartPole-v1", "PPO", 2)  # CleanRL ppo.py: 4 envs
    cheetah = reproduce.command(args, "HalfCheetah-v5", "Spiking-PPO", 1)  # ppo_continuous_action.py: 1 env
    assert cartpole[cartpole.index("--max-steps") + 1] == str(500_000 // 4)
    assert cheetah[cheetah.index("--max-steps") + 1] == str(1_000_000)
    assert cartpole[cartpole.index("--seed") + 1] == "2" and "--preset" in cartpole


def add(args):
    reproduce.add_record(*args)


def test_runs_finished_by_several_invocations_at_once_are_all_kept(tmp_path):
    path = tmp_path / "results.json"
    with Pool(4) as pool:
        pool.map(add, [(path, {"seed": i}) for i in range(24)])
    assert sorted(r["seed"] for r in json.loads(path.read_text())["runs"]) == list(range(24))
