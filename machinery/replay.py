"""--eval-only: replay a checkpoint's agent, on screen (--render), as a video (--capture-video), and
over --eval-episodes episodes, sampling the policy as training's evaluations do or playing its mean
(--mean-action) (observations normalized with the statistics saved in the checkpoint,
when the run normalized them) whose mean and std it prints with the actor's cost per decision
(machinery/cost.py, on up to DECISIONS of the observations the episodes visit); --report writes
both, and the cost of actor and critic together, as JSON.

It takes the script's `evaluate` as an argument, so that a replay plays exactly as training's
evaluations do; it knows nothing of how the agent was trained.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing
from functools import partial
from pathlib import Path

import torch

from machinery import cost, envs, files
from machinery.checkpoints import check_flags_match, from_data, load_agent
from machinery.cli import make_folder, make_folder_for
from machinery.run import eval_seed, resolve_device

DECISIONS = 64  # counting a decision takes tens of ms for the SNN (SpikingJelly's counters run op by op)
MAY_DIFFER = ("eval_episodes", "seed", "device", "vectorization")  # from the run the checkpoint belongs to


def replay(args, agent, given: set[str], evaluate: Callable) -> None:
    model, ckpt = load_agent(args.eval_only, agent)
    check_flags_match(args.eval_only, ckpt, args, given, (*args.ACTION_FLAGS, *MAY_DIFFER))
    if args.report:
        make_folder_for("--report", args.report)  # before the episodes, not after
    videos = Path(args.eval_only).parent / "videos"
    if args.capture_video:  # before the episodes too
        make_folder(videos, "--capture-video")
    spec, device = envs.env_spec(ckpt["env_id"]), resolve_device(args.device)
    envs.note_if_episodes_may_not_end(spec)
    model.to(device).eval()
    seed = eval_seed(args.seed, 0)
    norm = envs.normalization(agent.args_cls(**ckpt["args"]))

    def play(vector_env, visited=None):  # with the observation statistics the agent was trained with
        with closing(vector_env):
            if norm.obs_clip is not None:
                envs.use_obs_statistics(vector_env, from_data(ckpt["obs_statistics"]))
            return evaluate(model, vector_env, spec, seed, device, visited, mean_action=args.mean_action)

    visited = []
    returns = play(envs.new_eval_envs(spec.env_id, args.eval_episodes, args.vectorization, norm), visited)
    decisions = torch.cat(visited)
    costs = cost.cost_per_decision(model, cost.sample(decisions, DECISIONS, seed), with_critic=bool(args.report))
    print(f"{args.eval_only} (step {ckpt['step']}): {played(returns, spec.env_id)}{', mean action' * args.mean_action}")
    print(cost.actor_line(costs["actor"]))
    if args.report:
        files.write_json(args.report, report(args, ckpt, returns, len(decisions), costs))
        print(f"written: {args.report}")
    # Drawn last: counting the cost loads torch's compiler stack (triton, with an LLVM of its own),
    # which crashes the process where MuJoCo's off-screen OpenGL (Mesa, with another LLVM) came first.
    if args.render:
        play(envs.make_envs([partial(envs.make_normalized, spec.env_id, norm, frozen=True, render_mode="human")]))
    if args.capture_video:
        # named for what it shows, so that a replay of another step, seed or mode writes a file of its own
        name = f"{Path(args.eval_only).stem}-step{ckpt['step']}-seed{args.seed}{'-mean-action' * args.mean_action}"
        play(envs.make_envs([partial(envs.record_video_env, spec.env_id, norm, str(videos), name)]))
        print(f"video: {videos / name}-episode-0.mp4")


def played(returns, env_id: str) -> str:
    """What the episodes returned, as the replay prints it."""
    if len(returns) == 1:
        return f"1 episode of {env_id}, return {returns[0]:.2f}"
    return f"{len(returns)} episodes of {env_id}, return {returns.mean():.2f} ± {returns.std():.2f} (mean ± std)"


def report(args, ckpt: dict, returns, decisions: int, costs: dict) -> dict:
    """--report's JSON: the episodes' returns and the cost per decision of the checkpoint's agent."""
    return {
        "checkpoint": str(args.eval_only),
        "agent": ckpt["agent"],
        "env_id": ckpt["env_id"],
        "step": ckpt["step"],
        "episodes": len(returns),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "mean_action": args.mean_action,
        "decisions": decisions,
        "cost_sample": min(decisions, DECISIONS),
        "cost": costs,
        "energy_model": cost.ENERGY_MODEL,
    }
