"""Where a training loop's time goes: the env steps, the policy steps in the rollout (`act`: the
network's forward pass, the sample and its log-probability), the PPO updates (GAE, forward,
backward, optimizer), and the rest of the rollout (the noise, storage, the targets GAE sees).
Evaluations are left out (--eval-interval past the run's end, no cost measurement) unless the flags
given ask for them.

Trains one agent in this process, as its script would with the same flags, with timers around the
vector env's `step`, the rollout's `act` (compiled or not: the timer is outside it) and
`Spiking_PPO.update`: what the loop computes does not change, and the timers cost about a
microsecond a call.

    python bench/breakdown.py PPO --preset cleanrl --env-id HalfCheetah-v5 --max-steps 8192
    python bench/breakdown.py Spiking_PPO --preset cleanrl --env-id CartPole-v1 --max-steps 6250 --json b.json
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import Spiking_PPO  # noqa: E402
from machinery import files, session  # noqa: E402
from machinery.cli import UsageError, error, make_folder_for  # noqa: E402

SCRIPTS = ("PPO", "Spiking_PPO")
PARTS = ("env step", "policy step (rollout)", "PPO update", "rest of the rollout")


class Timers:
    """Seconds spent in each wrapped callable."""

    def __init__(self) -> None:
        self.seconds = {"env": 0.0, "policy": 0.0, "update": 0.0}

    def wrap(self, name: str, fn):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start

        return timed


@contextlib.contextmanager
def timed_training(timers: Timers):
    """Spiking_PPO.train with its session's env step, the rollout's policy step and the update timed."""
    training, collect_rollout, update = session.training, Spiking_PPO.collect_rollout, Spiking_PPO.update

    @contextlib.contextmanager
    def timed_session(*args, **kwargs):
        with training(*args, **kwargs) as t:
            t.envs.step = timers.wrap("env", t.envs.step)
            yield t

    def timed_rollout(t, act_fn=Spiking_PPO.act):
        return collect_rollout(t, timers.wrap("policy", act_fn))

    session.training, Spiking_PPO.collect_rollout = timed_session, timed_rollout
    Spiking_PPO.update = timers.wrap("update", update)
    try:
        yield
    finally:
        session.training, Spiking_PPO.collect_rollout, Spiking_PPO.update = training, collect_rollout, update


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in SCRIPTS:
        print(f"usage: bench/breakdown.py {{{','.join(SCRIPTS)}}} [the script's flags]", file=sys.stderr)
        return 2
    script, flags = argv[0], argv[1:]
    json_path = None
    if "--json" in flags:
        i = flags.index("--json")
        json_path, flags = flags[i + 1], flags[:i] + flags[i + 2 :]
        try:
            make_folder_for("--json", json_path)  # before the run, not after it
        except UsageError as e:
            return error(e)
    # evaluations are not the loop's work (CleanRL's loop has none), nor is measuring the cost per decision
    defaults = {"--eval-interval": str(10**12), "--cost-interval": "0"}
    flags += [item for flag, value in defaults.items() if flag not in flags for item in (flag, value)]
    agent, timers, out = __import__(script).AGENT, Timers(), io.StringIO()
    with timed_training(timers), contextlib.redirect_stdout(out):
        status = Spiking_PPO.main(agent, [*flags, "--quiet"])
    if status != 0:
        print(out.getvalue(), end="")
        return status
    done = re.search(r"done: (\d+) steps in ([\d.]+) s", out.getvalue())
    steps, loop = int(done.group(1)), float(done.group(2))
    env, policy, update = (timers.seconds[k] for k in ("env", "policy", "update"))
    seconds = dict(zip(PARTS, (env, policy, update, loop - env - policy - update), strict=True))
    print(f"{script} {' '.join(flags)}: {steps} rollout steps, training loop {loop:.1f} s")
    print("| part | seconds | share | us per rollout step |")
    print("|---|---:|---:|---:|")
    for part, s in seconds.items():
        print(f"| {part} | {s:.2f} | {s / loop:.0%} | {s / steps * 1e6:.0f} |")
    if json_path:
        record = {"script": script, "flags": flags, "rollout_steps": steps, "loop_s": loop, "seconds": seconds}
        files.write_json(json_path, record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
