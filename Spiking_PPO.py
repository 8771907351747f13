"""Spiking PPO: proximal policy optimization with a spiking actor-critic.

A re-implementation of SpikingJelly's "Reinforcement learning: PPO" tutorial on today's
stack (SpikingJelly 2.0, gymnasium 1.x). Each branch of the actor-critic is
``Linear -> IF neuron -> Linear -> non-spiking LIF neuron``; the observation is shown to the
network for ``T`` time steps and the readout neurons' membrane potentials after the last step
are the value and the action mean. PPO itself is the tutorial's: GAE, random mini-batches,
clipped surrogate.

    python Spiking_PPO.py                      # train on CartPole-v0, log to runs/
    python Spiking_PPO.py --help               # every hyperparameter
    tensorboard --logdir runs

This file is the algorithm, in the tutorial's order. The machinery around it (command line,
fast kernels, environments, checkpoints, the run's files and signals) is the `machinery`
package. ``PPO.py`` imports this file's training loop and swaps in an ANN, so that the two
agents differ in the network only.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
import torch.nn as nn
from spikingjelly.activation_based import functional, neuron
from torch.distributions import Normal

from machinery import checkpoints, cost, envs, run
from machinery.checkpoints import CheckpointError
from machinery.cli import UsageError, flag, given_flags, hyperparameters, parse_args
from machinery.fast_if import IFSpikeCount, check_fast_path_applies, if_forward, lif_readout_weights
from machinery.nir_export import export_checkpoint
from machinery.replay import replay
from machinery.resources import check_machine_can_run
from machinery.run import Agent, Run, TrainingDiverged
from machinery.speed import Adam, exit_now, tune_for_speed


# ---- Hyperparameters: each field is a command-line flag (--env-id, --num-envs, ...); the defaults are the tutorial's.
@dataclass
class Args:
    env_id: str = flag("CartPole-v0", "gymnasium env id (flat Box observation, Discrete or Box action)")
    num_envs: int = flag(4, "parallel training environments", "positive")
    vectorization: str = flag("sync", "run the envs in this process, or one process each", choices=("sync", "async"))
    seed: int = flag(1, "seed for python, numpy, torch and every environment", "seed")
    device: str = flag("auto", "torch device: cpu, cuda, or auto (cuda when available)")
    threads: int = flag(1, "torch CPU threads; the tutorial's tiny networks run fastest on one", "positive")
    max_steps: int = flag(100_000, "rollout steps to train for (one step advances every env)", "positive")
    num_steps: int = flag(128, "rollout steps per env between two PPO updates", "positive")
    hidden_size: int = flag(32, "hidden units in each branch (actor, critic)", "positive")
    learning_rate: float = flag(1e-3, "Adam learning rate", "positive")
    mini_batch_size: int = flag(256, "samples per PPO mini-batch", "positive")
    ppo_epochs: int = flag(30, "passes over each rollout per update", "positive")
    clip_param: float = flag(0.2, "PPO clipping range of the probability ratio", "positive")
    gamma: float = flag(0.99, "discount factor", "probability")
    gae_lambda: float = flag(0.95, "GAE lambda (the tutorial's `tau`)", "probability")
    ent_coef: float = flag(0.001, "entropy bonus coefficient", "nonnegative")
    vf_coef: float = flag(0.5, "value loss coefficient", "nonnegative")
    truncation_as_termination: bool = flag(False, "treat time limits as failures, as the tutorial did")
    eval_interval: int = flag(100, "rollout steps between two evaluations", "positive")
    eval_episodes: int = flag(10, "episodes per evaluation, played in parallel", "positive")
    cost_interval: int = flag(
        5000, "rollout steps between two measurements of the cost per decision (0: none)", "nonnegative"
    )
    stop_at_return: float | None = flag(None, "stop once the eval mean return reaches this", "finite")
    runs_dir: str = flag("runs", "parent directory of the run directories", metavar="DIR")
    quiet: bool = flag(False, "no progress bar (for logs and CI)")
    resume: str | None = flag(None, "continue the interrupted run in RUN_DIR from its last.pt", metavar="RUN_DIR")
    eval_only: str | None = flag(
        None, "play --eval-episodes episodes of a checkpoint, print the return", metavar="CHECKPOINT"
    )
    render: bool = flag(False, "with --eval-only: show one episode on screen")
    capture_video: bool = flag(False, "with --eval-only: write an mp4 of one episode beside the checkpoint")
    report: str | None = flag(
        None, "with --eval-only: write returns and cost per decision as JSON", metavar="FILE.json"
    )

    # Flags that say what to do rather than how to train: not saved with the run, and, with those
    # after them, the only ones a resumed run may change.
    ACTION_FLAGS: ClassVar[tuple[str, ...]] = ("quiet", "resume", "eval_only", "render", "capture_video", "report")
    RESUME_MAY_CHANGE: ClassVar[tuple[str, ...]] = ("max_steps", "stop_at_return", "device", "threads")


@dataclass
class SpikingArgs(Args):
    T: int = flag(16, "time steps the observation is presented to the SNN", "positive")
    snn_impl: str = flag(
        "fast", "fast (exact, closed form over T) or reference (step by step)", choices=("fast", "reference")
    )
    export_nir: str | None = flag(None, "write the checkpoint's actor as a NIR graph, <name>.nir", metavar="CHECKPOINT")

    ACTION_FLAGS: ClassVar[tuple[str, ...]] = (*Args.ACTION_FLAGS, "export_nir")


# ---- The spiking actor-critic ------------------------------------------------------------------
class NonSpikingLIFNode(neuron.SimpleLIFNode):
    """A LIF neuron that charges but never fires or resets: its membrane potential is its output.

    With ``decay_input=True`` and ``v_reset=0`` one step is ``v <- v + (x - v) / tau``.
    """

    def __init__(self, tau: float = 2.0):
        super().__init__(tau=tau, decay_input=True, v_reset=0.0)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        self.neuronal_charge(x)
        return self.v


class ActorCritic(nn.Module):
    """The tutorial's spiking actor-critic; its state dict maps one-to-one onto the original's."""

    def __init__(self, num_inputs: int, num_outputs: int, hidden_size: int, T: int = 16, std: float = 0.0, impl="fast"):
        super().__init__()
        self.critic = nn.Sequential(
            nn.Linear(num_inputs, hidden_size), neuron.IFNode(), nn.Linear(hidden_size, 1), NonSpikingLIFNode(tau=2.0)
        )
        self.actor = nn.Sequential(
            nn.Linear(num_inputs, hidden_size),
            neuron.IFNode(),
            nn.Linear(hidden_size, num_outputs),
            NonSpikingLIFNode(tau=2.0),
        )
        self.log_std = nn.Parameter(torch.ones(1, num_outputs) * std)
        self.T, self.impl = T, impl
        check_fast_path_applies(self)
        w = lif_readout_weights(self.actor[3].tau, T)
        self.register_buffer("readout_w", w.float(), persistent=False)  # derived from T and tau, not learned
        self.readout_w_sum = float(w.sum())
        # A plain tuple is not registered as submodules: the fast path reaches its layers without
        # nn.Sequential's indexing (microseconds a call) and without duplicate state-dict keys.
        self._layers = (self.critic[0], self.actor[0], self.critic[2], self.actor[2], self.actor[1])

    def forward(self, x: torch.Tensor) -> tuple[Normal, torch.Tensor]:
        mu, value = self.forward_fast(x) if self.impl == "fast" else self.forward_reference(x)
        std = self.log_std.exp().expand_as(mu)
        return Normal(mu, std, validate_args=False), value

    def forward_reference(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The tutorial's network, step by step: every module is called T times, then the network
        is reset (an SNN is stateful: the next call must not start from these potentials)."""
        for _ in range(self.T):
            self.critic(x)
            self.actor(x)
        value, mu = self.critic[-1].v, self.actor[-1].v
        functional.reset_net(self)
        return mu, value

    def forward_fast(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The same function and gradients as `forward_reference`, with the T loop in closed form
        (derived in machinery/fast_if.py).

        The first Linear sees the same x at every step, so it runs once; both branches' IF layers
        run as one; the LIF readout after T steps is a fixed weighted sum of its inputs, so the
        second Linear runs once on weighted spike counts (its bias counted sum(w) times).
        """
        critic_in, actor_in, critic_out, actor_out, if_node = self._layers
        h = torch.cat((critic_in(x), actor_in(x)), dim=-1)
        counts = IFSpikeCount.apply(h, self.readout_w, if_node.v_threshold, if_node.surrogate_function.alpha)
        critic_counts, actor_counts = counts.split(critic_in.out_features, dim=-1)
        # sum_t w[t] (W spike[t] + b) = W counts + sum(w) b, in one op
        value = torch.addmm(critic_out.bias, critic_counts, critic_out.weight.t(), beta=self.readout_w_sum)
        mu = torch.addmm(actor_out.bias, actor_counts, actor_out.weight.t(), beta=self.readout_w_sum)
        return mu, value


# ---- PPO ---------------------------------------------------------------------------------------
def compute_gae(next_value, rewards, masks, values, gamma: float = 0.99, lam: float = 0.95) -> torch.Tensor:
    """Generalized advantage estimation; returns the lambda-returns (advantage + value).

    All arguments are tensors with time as the first axis; masks[t] is 0 where the episode
    ended at step t, so neither the value nor the advantage of the next state leaks across it.
    """
    returns = torch.empty_like(rewards)
    gae = torch.zeros_like(next_value)
    for t in reversed(range(len(rewards))):
        delta = rewards[t] + gamma * next_value * masks[t] - values[t]
        gae = delta + gamma * lam * masks[t] * gae
        returns[t] = gae + values[t]
        next_value = values[t]
    return returns


def ppo_iter(mini_batch_size: int, *tensors: torch.Tensor, generator: torch.Generator | None = None):
    """Random disjoint mini-batches of the rows of `tensors`; the last partial batch is dropped."""
    batch_size = tensors[0].shape[0]
    used = batch_size // mini_batch_size * mini_batch_size
    ids = torch.randperm(batch_size, generator=generator, device=tensors[0].device)[:used]
    shuffled = [t[ids] for t in tensors]  # one gather per tensor; the mini-batches are views
    for start in range(0, used, mini_batch_size):
        yield tuple(t[start : start + mini_batch_size] for t in shuffled)


def ppo_update(
    model, optimizer, args: Args, states, actions, log_probs, returns, advantages, generator=None
) -> dict[str, float]:
    """The tutorial's PPO update. Returns loss statistics averaged over the last epoch's mini-batches,
    whose ratio and KL measure how far the whole update moved the policy."""
    stats, n = torch.zeros(6, device=states.device), 0
    for epoch in range(args.ppo_epochs):
        for state, action, old_log_probs, return_, advantage in ppo_iter(
            args.mini_batch_size, states, actions, log_probs, returns, advantages, generator=generator
        ):
            dist, value = model(state)
            entropy = dist.entropy().mean()
            new_log_probs = dist.log_prob(action)

            log_ratio = new_log_probs - old_log_probs
            ratio = log_ratio.exp()
            surr1 = ratio * advantage
            surr2 = torch.clamp(ratio, 1.0 - args.clip_param, 1.0 + args.clip_param) * advantage

            actor_loss = -torch.min(surr1, surr2).mean()
            critic_loss = (return_ - value).pow(2).mean()
            loss = args.vf_coef * critic_loss + actor_loss - args.ent_coef * entropy

            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

            if epoch == args.ppo_epochs - 1:
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean()  # http://joschu.net/blog/kl-approx.html
                    clip_frac = ((ratio - 1).abs() > args.clip_param).float().mean()
                    stats += torch.stack([loss, actor_loss, critic_loss, entropy, approx_kl, clip_frac])
                n += 1
    names = ("loss", "actor_loss", "critic_loss", "entropy", "approx_kl", "clip_frac")
    return dict(zip(names, (stats / n).tolist(), strict=True))


# ---- Evaluation --------------------------------------------------------------------------------
@torch.inference_mode()
def evaluate(model: nn.Module, eval_envs, spec: envs.EnvSpec, seed: int, device, visited=None) -> np.ndarray:
    """Returns of one episode in each of the envs, played together with the stochastic policy.

    The env resets and the action noise come from `seed` alone, so an evaluation depends only
    on the model and the seed, never on how much randomness training has used. `visited`, a list
    if given, receives the observations the policy decided on (what its cost is measured on).
    """
    rng = torch.Generator(device=device).manual_seed(seed)
    obs, _ = eval_envs.reset(seed=seed)
    returns, done = np.zeros(eval_envs.num_envs), np.zeros(eval_envs.num_envs, dtype=bool)
    while not done.all():
        state = torch.as_tensor(obs, dtype=torch.float32, device=device)
        if visited is not None:
            visited.append(state[torch.from_numpy(~done).to(device)])
        dist, _ = model(state)
        sample = torch.normal(dist.loc, dist.scale, generator=rng)
        obs, reward, terminated, truncated, _ = eval_envs.step(spec.to_env_action(sample))
        returns += np.where(done, 0.0, reward)
        done |= terminated | truncated
    return returns


# ---- Training ----------------------------------------------------------------------------------
class Rollout:
    """Preallocated storage for one rollout (the tutorial's lists): time first, then env."""

    def __init__(self, num_steps: int, num_envs: int, obs_dim: int, num_actions: int, device: torch.device):
        self.states = torch.zeros(num_steps, num_envs, obs_dim, device=device)
        self.actions = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.log_probs = torch.zeros(num_steps, num_envs, num_actions, device=device)
        self.values = torch.zeros(num_steps, num_envs, 1, device=device)
        self.rewards = np.zeros((num_steps, num_envs, 1), dtype=np.float32)
        self.masks = np.zeros((num_steps, num_envs, 1), dtype=np.float32)


@dataclass
class Training:
    """One training session: what training changes (last.pt is a snapshot of it) and where it goes."""

    args: Args
    agent: Agent
    spec: envs.EnvSpec
    model: nn.Module
    optimizer: Adam
    rng: torch.Generator  # rollout sampling and mini-batch order
    rollout: Rollout
    envs: gym.vector.VectorEnv
    obs: torch.Tensor  # the envs' current observations
    step: int = 0  # rollout steps taken (one advances every env)
    updates: int = 0
    best: float = -math.inf
    eval_mean: float = math.nan
    saved_step: int | None = None  # the step last.pt holds
    run: Run | None = None  # run directory, TensorBoard writer, progress bar, signals
    eval_envs: gym.vector.VectorEnv | None = None
    on_eval: Callable[[dict], None] | None = None
    diagnostics: dict[str, float] = dataclasses.field(default_factory=dict)  # the last update's scalars


def collect_rollout(t: Training) -> bool:
    """Step every env until the rollout is full (True), or until the run must stop (False): on a
    signal, or when an evaluation reaches the target."""
    args, rollout, device = t.args, t.rollout, t.obs.device

    def value_of(final_obs: np.ndarray) -> np.ndarray:  # for the episodes a time limit cut
        return t.model(torch.as_tensor(final_obs, dtype=torch.float32, device=device))[1][:, 0].cpu().numpy()

    with torch.inference_mode():
        for i in range(t.step % args.num_steps, args.num_steps):
            dist, value = t.model(t.obs)
            action = torch.normal(dist.loc, dist.scale, generator=t.rng)
            rollout.states[i], rollout.actions[i], rollout.values[i] = t.obs, action, value
            rollout.log_probs[i] = dist.log_prob(action)
            obs, reward, terminated, truncated, info = t.envs.step(t.spec.to_env_action(action))
            rollout.rewards[i, :, 0], rollout.masks[i, :, 0] = envs.step_targets(
                value_of, reward, terminated, truncated, info, args.gamma, args.truncation_as_termination
            )
            t.obs = torch.as_tensor(obs, dtype=torch.float32, device=device)
            t.step += 1
            t.run.bar.update(1)
            if t.step % args.eval_interval == 0 and evaluate_log_checkpoint(t):
                return False
            if t.run.stopping:
                return False
    return True


def evaluate_log_checkpoint(t: Training) -> bool:
    """Evaluate the policy, log the return, write best.pt and last.pt; True if it reached the target."""
    seed, visited = run.eval_seed(t.args.seed, t.step), [] if cost.due(t.step, t.args) else None
    with t.run.abandonable():  # a signal ends an evaluation at once; last.pt stays the previous one
        returns = evaluate(t.model, t.eval_envs, t.spec, seed, t.obs.device, visited)
        if visited:
            t.run.log(cost.actor_scalars(t.model, torch.cat(visited), seed), t.step)
    t.eval_mean = float(returns.mean())
    improved, t.best = t.eval_mean > t.best, max(t.best, t.eval_mean)
    t.run.evaluated(t.step, f"{t.agent.name}-{t.args.env_id}/Reward", returns, t.best)
    best, last = checkpoints.snapshot(t, t.run.training_seconds())
    if improved:
        checkpoints.save_checkpoint(t.run.dir / "best.pt", best)
    checkpoints.save_checkpoint(t.run.dir / "last.pt", last)
    t.saved_step = t.step
    if t.on_eval is not None:
        report = {"step": t.step, "eval_mean": t.eval_mean, "best": t.best}
        t.on_eval(report | {"elapsed_seconds": t.run.training_seconds()} | t.diagnostics)
    return t.args.stop_at_return is not None and t.eval_mean >= t.args.stop_at_return


def update(t: Training) -> dict[str, float]:
    """GAE over the full rollout, then the PPO update; returns the scalars TensorBoard shows for it."""
    args, r = t.args, t.rollout
    with torch.inference_mode():
        _, next_value = t.model(t.obs)
        rewards, masks = (torch.from_numpy(a).to(t.obs.device) for a in (r.rewards, r.masks))
        returns = compute_gae(next_value, rewards, masks, r.values, args.gamma, args.gae_lambda)
    advantages = returns - r.values
    batch = (r.states, r.actions, r.log_probs, returns, advantages)
    stats = ppo_update(t.model, t.optimizer, args, *(x.flatten(0, 1) for x in batch), generator=t.rng)
    t.updates += 1
    if not (math.isfinite(stats["loss"]) and all(p.isfinite().all() for p in t.model.parameters())):
        raise TrainingDiverged(
            f"non-finite loss or parameters in update {t.updates} (rollout step {t.step}); stopped, "
            f"{t.run.dir}/last.pt (step {t.saved_step}) is from before it"
        )
    values, targets = r.values.flatten(), returns.flatten()
    scalars = {f"losses/{name}": value for name, value in stats.items()}
    scalars["losses/explained_variance"] = float(1 - (targets - values).var() / targets.var())
    scalars["charts/learning_rate"] = args.learning_rate
    if t.agent.diagnostics is not None:
        with torch.inference_mode():
            scalars |= t.agent.diagnostics(t.model, r.states.flatten(0, 1))
    return scalars


def start_training(args: Args, agent: Agent, resume_from: dict | None, stop: run.StopSignals) -> Training:
    """A new run from `args`, or the run that `resume_from` (a last.pt) left, ready to go on."""
    spec, device = envs.env_spec(args.env_id), run.resolve_device(args.device)
    check_machine_can_run(args, spec.obs_dim, spec.num_actions)
    tune_for_speed(args.threads)
    run.seed_everything(args.seed)
    rng = torch.Generator(device=device).manual_seed(args.seed)
    model = agent.build(spec.obs_dim, spec.num_actions, args).to(device)
    rollout = Rollout(args.num_steps, args.num_envs, spec.obs_dim, spec.num_actions, device)
    train_envs = envs.new_training_envs(args.env_id, args.num_envs, args.vectorization)
    first_seed = args.seed if resume_from is None else run.eval_seed(args.seed, resume_from["step"])
    obs = torch.as_tensor(train_envs.reset(seed=first_seed)[0], dtype=torch.float32, device=device)
    t = Training(
        args, agent, spec, model, Adam(model.parameters(), lr=args.learning_rate), rng, rollout, train_envs, obs
    )
    if resume_from is not None:
        checkpoints.restore(t, resume_from)
    unsaved = checkpoints.why_envs_are_not_data(t)
    if unsaved:
        print(f"note: {unsaved}: last.pt cannot hold the envs, a resumed run starts new episodes", file=sys.stderr)
    run_dir = (
        Path(args.resume) if resume_from else run.create_run_dir(args.runs_dir, args.env_id, agent.script, args.seed)
    )
    elapsed = resume_from["elapsed_seconds"] if resume_from else 0.0
    total = -(-args.max_steps // args.num_steps) * args.num_steps  # training stops at a rollout's end
    t.run = Run(run_dir, stop, t.step, total, elapsed, args.quiet)
    t.eval_envs = envs.new_eval_envs(args.env_id, args.eval_episodes, args.vectorization)
    if resume_from is None:  # from here on, the run directory can be resumed
        t.run.describe(hyperparameters(args) | {"device": str(device)})
        checkpoints.save_checkpoint(run_dir / "last.pt", checkpoints.snapshot(t, 0.0)[1])
    t.saved_step = t.step
    return t


def train(args: Args, agent: Agent, resume_from: dict | None = None, on_eval: Callable[[dict], None] | None = None):
    """Train `agent` as `args` say, or continue the run that `resume_from` (a last.pt) left.

    `on_eval`, if given, receives each evaluation: step, eval_mean, best, elapsed_seconds and the
    latest diagnostics (sweep.py reports them to Ray Tune).
    """
    stop = run.StopSignals()  # before anything is created, so that a signal never leaves half a run
    try:
        t = start_training(args, agent, resume_from, stop)
    except BaseException:
        stop.restore()
        raise
    t.on_eval, start_seconds = on_eval, t.run.training_seconds()
    try:
        while t.step < args.max_steps and not t.run.stopping and collect_rollout(t):
            with t.run.abandonable():  # a signal ends an update at once; last.pt stays the previous one
                t.diagnostics = update(t)
            t.run.log(t.diagnostics | {"charts/steps_per_second": t.run.steps_per_second(t.step)}, t.step)
        checkpoints.save_checkpoint(t.run.dir / "last.pt", checkpoints.snapshot(t, t.run.training_seconds())[1])
        t.saved_step = t.step
    except run.Stopped:
        pass
    finally:
        t.run.close()
        t.envs.close()
        t.eval_envs.close()
    seconds = t.run.training_seconds() - start_seconds
    summary = {"run_dir": str(t.run.dir), "best": t.best, "steps": t.step, "seconds": seconds}
    return summary | {"signal": t.run.stop.signum, "saved_step": t.saved_step}


def main(agent: Agent, argv: list[str] | None = None) -> int:
    # The tutorial's env is CartPole-v0 on purpose; gymnasium's advice to move to v1 is noise here.
    warnings.filterwarnings("ignore", message=".*is out of date", category=DeprecationWarning)
    try:
        args = parse_args(agent.args_cls, argv, agent.description)
        given = given_flags(agent.args_cls, argv)
        if args.eval_only:
            replay(args, agent, given, evaluate)
            return 0
        if getattr(args, "export_nir", None):
            print(f"written: {export_checkpoint(args.export_nir, agent)}")
            return 0
        resume_from = None
        if args.resume:
            args, resume_from = checkpoints.resume_args(args, agent, given)
        return run.exit_status(train(args, agent, resume_from), agent.script)
    except (UsageError, CheckpointError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except TrainingDiverged as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a full or failing disk: what was saved before is whole (written atomically)
        where = f"{e.filename}: " if e.filename else "writing the run's files: "
        print(f"error: {where}{e.strerror or e}; files saved before it are intact", file=sys.stderr)
        return 1


# ---- The spiking agent -------------------------------------------------------------------------
def build_spiking_agent(num_inputs: int, num_actions: int, args: SpikingArgs) -> ActorCritic:
    return ActorCritic(num_inputs, num_actions, args.hidden_size, T=args.T, impl=args.snn_impl)


def spiking_diagnostics(model: ActorCritic, states: torch.Tensor) -> dict[str, float]:
    """Each hidden IF layer on the batch: its mean firing rate (the fraction of the T steps a neuron
    fires), and the fraction of its neurons silent on the whole batch."""
    scalars, per_step = {}, torch.full((model.T,), 1.0 / model.T, device=states.device)
    for name, branch in (("actor", model.actor), ("critic", model.critic)):
        rates = if_forward(branch[0](states), branch[1].v_threshold, branch[1].surrogate_function.alpha, per_step)[0]
        scalars[f"snn/firing_rate/{name}"] = float(rates.mean())
        scalars[f"snn/never_firing_fraction/{name}"] = float((rates.amax(dim=0) == 0).float().mean())
    return scalars


AGENT = Agent(
    "Spiking-PPO", "Spiking_PPO", SpikingArgs, build_spiking_agent, __doc__.split("\n\n")[0], spiking_diagnostics
)

if __name__ == "__main__":
    exit_now(main(AGENT))
