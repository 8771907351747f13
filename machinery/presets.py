"""--preset: named sets of defaults, one per kind of action space; flags given on the command line
override them. The README's "Presets" table sets their values side by side.

- "tutorial" (the default) is the flags' own defaults: the tutorial's PPO.
- "cleanrl" is CleanRL's ppo.py on a Discrete action space and ppo_continuous_action.py on a Box
  one, detail for detail, network width and budget included (its total_timesteps, 500k environment
  steps on Discrete tasks and 1M on Box ones, as rollout steps of its 4 or 1 envs). CleanRL does not
  evaluate while it trains; the preset evaluates 50 times over that budget, as the README's results
  did: at the tutorial's every 100 rollout steps, the evaluations' 10 whole episodes (10,000
  environment steps on MuJoCo) would take most of a run's time.
- "cleanrl-bootstrap" is ours: "cleanrl" with the bootstrap at time limits, without which each agent
  reached a return near -200 on Pendulum-v1 on few seeds of 6 (the ANN on 2, the SNN on 1), and with
  which both did on all 6 (README, "Results").
- "snn-tuned" is ours too: what suited the spiking agent best in the README's results, the tutorial's
  settings with IF neurons that subtract the threshold (--soft-reset) on a Discrete action space (a
  sweep's pick on Acrobot-v1; 500 on every seed of CartPole-v1, as the reset to 0) and
  "cleanrl-bootstrap" with a LIF readout time constant of 16 steps on a Box one (better on
  HalfCheetah-v5 and Pendulum-v1, not on Hopper-v5). The ANN twin gets the same PPO settings and has
  neither soft reset nor readout: an agent takes the values of the flags it has.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from machinery.cli import apply_preset, given_flags, parse_args
from machinery.envs import env_spec

_CLEANRL = dict(
    hidden_size=64, hidden_layers=2, ortho_init=True, anneal_lr=True, adam_eps=1e-5, joint_ratio=True,
    norm_adv=True, clip_vloss=True, max_grad_norm=0.5, gamma=0.99, gae_lambda=0.95, clip_param=0.2,
    vf_coef=0.25, truncation_as_termination=True,  # CleanRL: 0.5 times its value loss's own 0.5; no bootstrap
)  # fmt: skip
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tutorial": {"Discrete": {}, "Box": {}},
    "cleanrl": {
        "Discrete": _CLEANRL | dict(num_envs=4, num_steps=128, learning_rate=2.5e-4, mini_batch_size=128,
                                    ppo_epochs=4, ent_coef=0.01, max_steps=500_000 // 4, eval_interval=2500),
        "Box": _CLEANRL | dict(num_envs=1, num_steps=2048, learning_rate=3e-4, mini_batch_size=64, ppo_epochs=10,
                               ent_coef=0.0, norm_obs=True, norm_reward=True, obs_clip=10.0, reward_clip=10.0,
                               max_steps=1_000_000, eval_interval=20_000),
    },
}  # fmt: skip
PRESETS["cleanrl-bootstrap"] = {k: v | {"truncation_as_termination": False} for k, v in PRESETS["cleanrl"].items()}
PRESETS["snn-tuned"] = {
    "Discrete": {"soft_reset": True},
    "Box": PRESETS["cleanrl-bootstrap"]["Box"] | {"readout_tau": 16.0},
}
NAMES = tuple(PRESETS)


def with_preset(args: Any, given: set[str]) -> Any:
    """args with the values of --preset for its env's kind of action space, where no flag was given."""
    kind = "Discrete" if isinstance(env_spec(args.env_id).action_space, gym.spaces.Discrete) else "Box"
    return apply_preset(args, PRESETS[args.preset][kind], given)


def resolve(args_cls: type, argv: list[str]) -> Any:
    """argv parsed as `args_cls` with its --preset applied: what a script trains with (the tools that
    start runs check their flags with it before they start any)."""
    return with_preset(parse_args(args_cls, argv), given_flags(args_cls, argv))
