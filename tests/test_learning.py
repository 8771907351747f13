"""The spiking agent learns CartPole-v0 from a fixed seed within a step budget that fits CI."""

from helpers import run_script


def test_spiking_agent_reaches_a_mean_eval_return_of_195(runs_dir):
    result = run_script(
        "Spiking_PPO.py", "--max-steps", "20000", "--stop-at-return", "195", "--runs-dir", str(runs_dir)
    )
    assert result.returncode == 0, result.stderr
    eval_returns = [
        float(line.split("eval return")[1].split()[0]) for line in result.stdout.splitlines() if line.startswith("step")
    ]
    assert max(eval_returns) >= 195, eval_returns
