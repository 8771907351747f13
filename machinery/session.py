"""A training session from its start to its end, whatever ends it.

The script builds the network, its optimizer and the rollout storage and runs the training loop
inside `training(...)`; this module does the rest: before the network is built, `prepare` checks
that the machine can run the session, tunes torch and seeds everything; `training` installs the
signal handlers before any env or file is created, makes the envs and the run directory (or takes the
interrupted run's back, from its last.pt), and, however the loop ends, writes the final last.pt,
closes the envs and the TensorBoard writer, and restores the signal handlers. `Training` is what
the loop changes; last.pt is a snapshot of it.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch

from machinery import checkpoints, envs, run
from machinery.cli import hyperparameters
from machinery.resources import check_machine_can_run
from machinery.speed import tune_for_speed


@dataclass
class Training:
    """One training session: what training changes (last.pt is a snapshot of it) and where it goes."""

    args: Any  # the script's Args
    agent: run.Agent
    spec: envs.EnvSpec
    model: torch.nn.Module
    optimizer: Any  # machinery.speed.Adam
    rng: torch.Generator  # rollout sampling and mini-batch order
    rollout: Any  # the script's Rollout: tensors and arrays, time first
    envs: gym.vector.VectorEnv
    obs: torch.Tensor  # the envs' current observations
    run: run.Run | None = None  # run directory, TensorBoard writer, progress bar, signals
    eval_envs: gym.vector.VectorEnv | None = None
    on_eval: Callable[[dict], None] | None = None
    step: int = 0  # rollout steps taken (one advances every env)
    updates: int = 0
    best: float = -math.inf
    eval_mean: float = math.nan
    saved_step: int | None = None  # the step last.pt holds
    start_seconds: float = 0.0  # training seconds before this session (a resumed run's earlier ones)
    diagnostics: dict[str, float] = dataclasses.field(default_factory=dict)  # the last update's scalars

    def save(self, improved: bool = False) -> None:
        """Write last.pt, and best.pt too if the latest evaluation is the best so far."""
        best, last = checkpoints.snapshot(self, self.run.training_seconds())
        if improved:
            checkpoints.save_checkpoint(self.run.dir / "best.pt", best)
        checkpoints.save_checkpoint(self.run.dir / "last.pt", last)
        self.saved_step = self.step

    def check_finite(self, loss: float) -> None:
        """Raise TrainingDiverged (exit status 1) if the last update's loss or any parameter is not finite."""
        if not (math.isfinite(loss) and all(p.isfinite().all() for p in self.model.parameters())):
            raise run.TrainingDiverged(
                f"non-finite loss or parameters in update {self.updates} (rollout step {self.step}); stopped, "
                f"{self.run.dir}/last.pt (step {self.saved_step}) is from before it"
            )

    def log_finished_episodes(self, info: dict) -> None:
        """The return and length of each training episode that ended in the last vector step, under
        CleanRL's tags: the env's own rewards (before --norm-reward scales them), at this rollout step."""
        for episode_return, length in envs.finished_episodes(info):
            self.run.log({"charts/episodic_return": episode_return, "charts/episodic_length": length}, self.step)

    def report_evaluation(self) -> None:
        """Give the latest evaluation to `on_eval` (sweep.py's reporter to Ray Tune), if there is one."""
        if self.on_eval is not None:
            report = {"step": self.step, "eval_mean": self.eval_mean, "best": self.best}
            self.on_eval(report | {"elapsed_seconds": self.run.training_seconds()} | self.diagnostics)

    def summary(self) -> dict:
        """How the session ended: run_dir, best, steps (the run's), start_step and seconds (this session's),
        signal (None unless one stopped it), saved_step."""
        seconds = self.run.training_seconds() - self.start_seconds
        summary = {"run_dir": str(self.run.dir), "best": self.best, "steps": self.step, "seconds": seconds}
        ended = {"signal": self.run.stop.signum, "saved_step": self.saved_step}
        return summary | {"start_step": self.run.start_step} | ended


def prepare(args) -> tuple[envs.EnvSpec, torch.device]:
    """Before the network is built: the env's sizes and the device, checked against the machine;
    torch tuned for speed, and python, numpy and torch seeded with --seed."""
    spec, device = envs.env_spec(args.env_id), run.resolve_device(args.device)
    check_machine_can_run(args, spec.obs_dim, spec.num_actions)
    envs.note_if_episodes_may_not_end(spec)
    tune_for_speed(args.threads)
    run.seed_everything(args.seed)
    return spec, device


@contextmanager
def training(
    args, agent: run.Agent, spec: envs.EnvSpec, model: torch.nn.Module, optimizer, rollout,
    resume_from: dict | None = None, on_eval: Callable[[dict], None] | None = None,
) -> Iterator[Training]:  # fmt: skip
    """A new session of a new run, or of the run that `resume_from` (a last.pt) left, for the body
    of a `with` to train. A signal (SIGINT, SIGTERM) ends the body where it checks `run.stopping`,
    or at once inside `run.abandonable()`; the session then keeps what was last saved."""
    stop = run.StopSignals()  # before any env or file is created, so that a signal never leaves half a run
    try:
        t = start(args, agent, spec, model, optimizer, rollout, resume_from, stop)
    except BaseException:
        stop.restore()
        raise
    t.on_eval = on_eval
    try:
        yield t
        t.save()
    except run.Stopped:
        pass
    finally:
        t.run.close()
        t.envs.close()
        t.eval_envs.close()


def start(args, agent, spec, model, optimizer, rollout, resume_from: dict | None, stop: run.StopSignals) -> Training:
    """The envs, the run directory and the training state, new or as `resume_from` left them."""
    device = next(model.parameters()).device
    rng = torch.Generator(device=device).manual_seed(args.seed)
    train_envs = envs.new_training_envs(args.env_id, args.num_envs, args.vectorization, envs.normalization(args))
    first_seed = args.seed if resume_from is None else run.eval_seed(args.seed, resume_from["step"])
    obs = torch.as_tensor(train_envs.reset(seed=first_seed)[0], dtype=torch.float32, device=device)
    t = Training(args, agent, spec, model, optimizer, rng, rollout, train_envs, obs)
    if resume_from is not None:
        checkpoints.restore(t, resume_from)
    unsaved = checkpoints.why_envs_are_not_data(t)
    if unsaved:
        print(f"note: {unsaved}: last.pt cannot hold the envs, a resumed run starts new episodes", file=sys.stderr)
    run_dir = (
        Path(args.resume) if resume_from else run.create_run_dir(args.runs_dir, args.env_id, agent.script, args.seed)
    )
    t.start_seconds = resume_from["elapsed_seconds"] if resume_from else 0.0
    t.run = run.Run(run_dir, stop, t.step, run.last_step(args), t.start_seconds, args.quiet)
    t.eval_envs = envs.new_eval_envs(args.env_id, args.eval_episodes, args.vectorization, envs.normalization(args))
    if resume_from is None:  # from here on, the run directory can be resumed
        t.run.describe(hyperparameters(args) | {"device": str(device)})
        t.save()
    else:
        t.saved_step = t.step
    return t
