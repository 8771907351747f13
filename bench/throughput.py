"""Throughput at CleanRL's own settings: environment steps per second of both agents' training loop.

Runs `PPO.py` and `Spiking_PPO.py` with `--preset cleanrl` on CartPole-v1 and HalfCheetah-v5 for a
fixed number of environment steps, with no evaluation (CleanRL's loop has none), one run at a time,
and reports the loop's own count of seconds (start-up left out, as CleanRL's SPS leaves it out),
the median of --runs runs, beside CleanRL's figures on this machine class (CLEANRL_SPS).

    python bench/throughput.py                  # 100k environment steps per run, 3 runs per agent
    python bench/throughput.py --device cuda --json throughput-cuda.json   # the networks on a GPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchmark import time_training  # noqa: E402
from reproduce import num_envs  # noqa: E402

# CleanRL's scripts at their defaults on this machine class, as measured for issue #13 (SPS, the
# environment steps per second its loop prints): ppo.py on CartPole-v1 ran 100k steps in 14 s, about
# 9,000 steps/s in its loop; ppo_continuous_action.py on HalfCheetah about 2,100 steps/s.
CLEANRL_SPS = {"CartPole-v1": 9_000, "HalfCheetah-v5": 2_100}
SCRIPTS = {"PPO": "PPO.py", "Spiking-PPO": "Spiking_PPO.py"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env-steps", type=int, default=100_000, help="environment steps per run")
    parser.add_argument("--runs", type=int, default=3, help="runs per agent and task (the median is reported)")
    parser.add_argument(
        "--tasks", nargs="+", choices=list(CLEANRL_SPS), default=list(CLEANRL_SPS), help="tasks to time"
    )
    parser.add_argument("--agents", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS), help="agents to time")
    parser.add_argument(
        "--device", default="cpu", choices=("cpu", "cuda", "auto"), help="the scripts' --device (envs run on the CPU)"
    )
    parser.add_argument("--json", default=str(ROOT / "bench" / "results-throughput.json"), help="where to write")
    args = parser.parse_args()

    results = {"env_steps": args.env_steps, "device": args.device, "cleanrl_sps": CLEANRL_SPS, "runs": {}}
    with tempfile.TemporaryDirectory() as runs_dir:
        for task in args.tasks:
            preset = ["--preset", "cleanrl"]
            envs_at_once = num_envs(task, preset)
            steps = args.env_steps // envs_at_once
            flags = [*preset, "--env-id", task, "--eval-interval", str(10 * steps), "--cost-interval", "0"]
            for agent in args.agents:
                loops = []
                for _ in range(args.runs):
                    done, _, loop = time_training(SCRIPTS[agent], flags, steps, runs_dir, 1, args.device)
                    loops.append(loop)
                    print(f"{task} {agent}: {done * envs_at_once} env steps in {loop:.1f} s", file=sys.stderr)
                sps = done * envs_at_once / statistics.median(loops)
                results["runs"][f"{task} {agent}"] = {"loop_s_all": loops, "env_steps_per_s": sps}
                Path(args.json).write_text(json.dumps(results, indent=2) + "\n")  # what is done survives a stop

    print("| task | CleanRL (its SPS) | PPO (ANN) | Spiking PPO |")
    print("|---|---:|---:|---:|")
    for task in args.tasks:
        cells = []
        for agent in SCRIPTS:
            sps = results["runs"].get(f"{task} {agent}", {}).get("env_steps_per_s")
            cells.append("-" if sps is None else f"{sps:,.0f} ({sps / CLEANRL_SPS[task]:.2f}x)")
        print(f"| {task} | {CLEANRL_SPS[task]:,} | {' | '.join(cells)} |")
    print(f"\nwritten: {args.json}")


if __name__ == "__main__":
    main()
