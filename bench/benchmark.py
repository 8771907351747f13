"""Speed of the spiking agent (fast and reference paths) against its ANN twin, on this machine.

Trains each agent from the command line, as a user would, for a fixed number of rollout steps
(same config, same seed; start-up included; the median of --runs runs), then times one network
forward (batch 4, no grad) and one forward+backward (batch 256), medians of --repeats calls.
Prints a table and writes the same figures as JSON.

    python bench/benchmark.py                 # 1e4 rollout steps for each agent
    python bench/benchmark.py --steps 30000 --reference-steps 30000    # the README's main figures
    python bench/benchmark.py --steps 2000 --reference-steps 500    # a quick look
    python bench/benchmark.py --threads 2     # torch on two threads instead of the scripts' default one
"""

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import PPO  # noqa: E402
import Spiking_PPO  # noqa: E402
from machinery import files  # noqa: E402
from machinery.cli import OneLineParser, UsageError, check_positive, error, make_folder_for  # noqa: E402
from machinery.speed import keep_freed_memory_for_reuse  # noqa: E402

AGENTS = {  # name: (script, extra flags, network builder)
    "snn-fast": ("Spiking_PPO.py", ["--snn-impl", "fast"], lambda: Spiking_PPO.ActorCritic(4, 2, 32, impl="fast")),
    "snn-reference": (
        "Spiking_PPO.py",
        ["--snn-impl", "reference"],
        lambda: Spiking_PPO.ActorCritic(4, 2, 32, impl="reference"),
    ),
    "ann": ("PPO.py", [], lambda: PPO.ActorCritic(4, 2, 32)),
    # what measuring the cost per decision for TensorBoard (every --cost-interval steps) costs training
    "snn-fast-no-cost": (
        "Spiking_PPO.py",
        ["--snn-impl", "fast", "--cost-interval", "0"],
        lambda: Spiking_PPO.ActorCritic(4, 2, 32, impl="fast"),
    ),
}


def time_training(
    script: str, flags: list[str], steps: int, runs_dir: str, threads: int, device: str = "cpu"
) -> tuple[int, float, float]:
    """Rollout steps done, wall time of the whole run (start-up included), and the script's own
    count of training seconds (the loop alone)."""
    command = [sys.executable, str(ROOT / script), "--max-steps", str(steps), "--runs-dir", runs_dir]
    command += ["--threads", str(threads)]
    start = time.perf_counter()
    result = subprocess.run(
        [*command, "--device", device, "--quiet", *flags], capture_output=True, text=True, check=True
    )
    wall = time.perf_counter() - start
    done = re.search(r"done: (\d+) steps in ([\d.]+) s", result.stdout)
    return int(done.group(1)), wall, float(done.group(2))


def median_time(fn, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_network(build, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build()
    x4, x256 = torch.randn(4, 4), torch.randn(256, 4)
    actions, returns = torch.randn(256, 2), torch.randn(256, 1)

    def forward():
        with torch.no_grad():
            model(x4)

    def forward_backward():
        dist, value = model(x256)
        loss = -dist.log_prob(actions).mean() + (returns - value).pow(2).mean()
        model.zero_grad(set_to_none=True)
        loss.backward()

    return {
        "forward_b4_us": median_time(forward, repeats) * 1e6,
        "fwd_bwd_b256_us": median_time(forward_backward, repeats) * 1e6,
    }


def ratios(results: dict) -> dict[str, float]:
    """The comparisons the README states (the targets `report` prints beside them), from the agents' medians."""
    fast, ref, ann = results["snn-fast"], results["snn-reference"], results["ann"]
    return {
        "training_fast_vs_reference_speedup": fast["rollout_steps_per_s"] / ref["rollout_steps_per_s"],
        "training_snn_vs_ann_time": ann["rollout_steps_per_s"] / fast["rollout_steps_per_s"],
        "fwd_bwd_b256_snn_vs_ann_time": fast["fwd_bwd_b256_us"] / ann["fwd_bwd_b256_us"],
        "forward_b4_snn_vs_ann_time": fast["forward_b4_us"] / ann["forward_b4_us"],
        "loop_only_fast_vs_reference_speedup": fast["loop_steps_per_s"] / ref["loop_steps_per_s"],
        "loop_only_snn_vs_ann_time": ann["loop_steps_per_s"] / fast["loop_steps_per_s"],
        "cost_measurement_overhead": results["snn-fast-no-cost"]["loop_steps_per_s"] / fast["loop_steps_per_s"] - 1,
    }


def report(results: dict) -> str:
    """The table and the ratios the README shows, from a results JSON (of the agents it holds)."""
    lines = [
        "| agent | rollout steps | wall time (s) | rollout steps/s | of which training loop (s) "
        "| forward, batch 4 (us) | fwd+bwd, batch 256 (us) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name in (name for name in AGENTS if name in results):
        r = results[name]
        lines.append(
            f"| {name} | {r['rollout_steps']} | {r['wall_s']:.1f} | {r['rollout_steps_per_s']:.0f} | {r['loop_s']:.1f} "
            f"| {r['forward_b4_us']:.0f} | {r['fwd_bwd_b256_us']:.0f} |"
        )
    ratios = results["ratios"]
    loop_ref, loop_ann = ratios["loop_only_fast_vs_reference_speedup"], ratios["loop_only_snn_vs_ann_time"]
    lines += [
        "",
        f"training speed, SNN fast / reference:   {ratios['training_fast_vs_reference_speedup']:.1f}x  (target >= 10x)",
        f"training time, SNN fast / ANN:          {ratios['training_snn_vs_ann_time']:.2f}x (target <= 1.5x)",
        f"forward+backward b256, SNN fast / ANN:  {ratios['fwd_bwd_b256_snn_vs_ann_time']:.2f}x (target <= 3x)",
        f"forward b4, SNN fast / ANN:             {ratios['forward_b4_snn_vs_ann_time']:.2f}x",
        "training loop alone (start-up left out): "
        f"SNN fast / reference {loop_ref:.1f}x, SNN fast / ANN {loop_ann:.2f}x",
    ]
    if "cost_measurement_overhead" in ratios:  # measured from 2026-11-25 on
        overhead = ratios["cost_measurement_overhead"]
        lines.append(f"cost measurement (--cost-interval 5000, the default) slows SNN training by {overhead:.1%}")
    return "\n".join(lines)


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=10_000, help="rollout steps for the fast SNN and the ANN")
    parser.add_argument("--reference-steps", type=int, default=10_000, help="rollout steps for the reference SNN")
    parser.add_argument("--runs", type=int, default=3, help="training runs per agent (the median is reported)")
    parser.add_argument("--reference-runs", type=int, default=1, help="training runs of the reference SNN")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, for training (--threads) and timing")
    parser.add_argument("--repeats", type=int, default=300, help="timed calls per network measurement")
    parser.add_argument("--json", default=str(ROOT / "bench" / "out" / "benchmark.json"), help="where to write JSON")
    args = parser.parse_args(argv)
    check_positive(args, "steps", "reference_steps", "runs", "reference_runs", "threads", "repeats")
    make_folder_for("--json", args.json)
    return args


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_cli(argv)
    except UsageError as e:
        return error(e)
    keep_freed_memory_for_reuse()  # as in training
    torch.set_num_threads(args.threads)
    results = {
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "cpu_cores": os.cpu_count(),
            "torch_threads": args.threads,
            "processor": platform.processor(),
        }
    }
    # Runs of the agents alternate, so that a slow spell of the machine (timings here vary by 20%
    # from one run to the next) hits them alike; each agent's median run is reported.
    order = [name for _ in range(args.runs) for name in AGENTS if name != "snn-reference"]
    order += ["snn-reference"] * args.reference_runs
    walls: dict[str, list[float]] = {name: [] for name in AGENTS}
    loops: dict[str, list[float]] = {name: [] for name in AGENTS}
    with tempfile.TemporaryDirectory() as runs_dir:
        for name in order:
            script, flags, _ = AGENTS[name]
            steps = args.reference_steps if name == "snn-reference" else args.steps
            done, wall, loop = time_training(script, flags, steps, runs_dir, args.threads)
            walls[name].append(wall)
            loops[name].append(loop)
            results[name] = {"rollout_steps": done, "wall_s_all": walls[name], "loop_s_all": loops[name]}
            print(f"{name}: {done} steps in {wall:.1f} s", file=sys.stderr)
    for name, (_, _, build) in AGENTS.items():
        wall, loop = statistics.median(walls[name]), statistics.median(loops[name])
        steps = results[name]["rollout_steps"]
        results[name].update(wall_s=wall, rollout_steps_per_s=steps / wall, loop_s=loop, loop_steps_per_s=steps / loop)
        results[name].update(time_network(build, args.repeats))

    results["ratios"] = ratios(results)
    print(report(results))
    files.write_json(args.json, results)
    print(f"\nwritten: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
