"""Environments: what the agents need of an env, vector envs with the tutorial's autoreset,
the targets GAE sees at an episode's end, the training episodes' returns, the return that counts as
solving an env, and an env's state as plain data.

Nothing here knows the network: what needs the critic's value gets it as a function. An env's state
is captured for exact resume by `StateAsData`, the outermost wrapper of every training env, so the
same call works whether the env lives in this process (sync) or another (async). It captures each
wrapper's and the base env's plain attributes (numbers, arrays, strings, and lists and deques of
them), the env's random generator, and a MuJoCo simulation's full integration state. An env that
holds anything else (a file, a socket, an object of its own) cannot be captured: its run still
checkpoints and resumes, and starts new episodes on resume.
"""

from __future__ import annotations

import collections
import copy
import functools
import multiprocessing
import os
import signal
import sys
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from machinery.cli import UsageError, one_line


@dataclass
class EnvSpec:
    """What the agents need to know of an env: its sizes and how a policy sample becomes an action."""

    env_id: str
    obs_dim: int
    num_actions: int  # Discrete: one Gaussian component per action; Box: the action's size
    action_space: gym.Space
    max_episode_steps: int | None = None  # the time limit gymnasium's registry gives its episodes, if any

    def to_env_action(self, sample: torch.Tensor) -> np.ndarray:
        if isinstance(self.action_space, gym.spaces.Discrete):
            # The tutorial's rule: the index of the largest component of the Gaussian sample.
            return sample.cpu().numpy().argmax(axis=-1) + int(self.action_space.start)
        # The Gaussian is the policy itself; the env gets the sample clipped to its bounds, PPO
        # keeps the log-probability of the unclipped sample.
        return np.clip(sample.cpu().numpy(), self.action_space.low, self.action_space.high)


def env_spec(env_id: str) -> EnvSpec:
    """The spec of env_id, or a UsageError saying what is wrong with it. Every env problem is found
    here, before a run creates anything: the env is made, reset and stepped once."""
    try:
        with warnings.catch_warnings():  # gymnasium warns before an id is refused here in one line
            warnings.simplefilter("ignore")
            mujoco_warnings_once(env_id)
            env = gym.make(env_id)
    except Exception as e:  # gymnasium's errors, a failed import of module:EnvName-v0, the env's own
        raise UsageError(f"--env-id {env_id!r}: {one_line(e)}") from None
    try:
        if env.spec is not None and env.spec.id != registered_id(env_id):
            raise UsageError(f"--env-id {env_id!r} has no version: name one, e.g. {env.spec.id!r}")
        obs_space, act_space = env.observation_space, env.action_space
        try:
            env.reset(seed=0)
            env.step(act_space.sample())
        except Exception as e:
            raise UsageError(f"--env-id {env_id!r}: the env fails to reset or step ({one_line(e)})") from None
    finally:
        env.close()
    if not (isinstance(obs_space, gym.spaces.Box) and len(obs_space.shape) == 1):
        raise UsageError(
            f"--env-id {env_id!r}: observation space {obs_space} is not a flat Box, which the networks take: "
            "register the env wrapped in gymnasium.wrappers.FlattenObservation and give --env-id module:YourEnv-v0"
        )
    limit = env.spec.max_episode_steps if env.spec is not None else None
    if isinstance(act_space, gym.spaces.Discrete):
        return EnvSpec(env_id, obs_space.shape[0], int(act_space.n), act_space, limit)
    if isinstance(act_space, gym.spaces.Box) and len(act_space.shape) == 1:
        return EnvSpec(env_id, obs_space.shape[0], act_space.shape[0], act_space, limit)
    raise UsageError(
        f"--env-id {env_id!r}: action space {act_space} is neither Discrete nor a flat Box: the agents act in "
        "one of those two only"
    )


def note_if_episodes_may_not_end(spec: EnvSpec) -> None:
    """A line on stderr where the env's episodes have no time limit: an evaluation plays each episode
    to its end, and would wait forever on an env whose episodes can go on forever."""
    if spec.max_episode_steps is None:
        print(
            f"note: {spec.env_id} has no time limit, and an evaluation waits for every episode to end; if its "
            "episodes can go on forever, register it with max_episode_steps",
            file=sys.stderr,
        )


def mujoco_warnings_once(env_id: str) -> None:
    """MuJoCo prints its warnings itself, each time, and appends them to MUJOCO_LOG.TXT in the working
    directory: MuJoCo 4 warns of a deprecated attribute in gymnasium's HalfCheetah and Hopper models
    at every env made (13 times a run). Routed through Python's warnings before the env is made, each
    shows once per process and no file is written; that one, about gymnasium's files and nothing a
    user can act on, not at all (dropped in the handler itself: env_spec makes envs under
    catch_warnings, which would forget a filter set here)."""
    try:
        entry_point = str(gym.spec(registered_id(env_id)).entry_point)
    except Exception:  # env_spec reports a bad id in its own words
        return
    if "mujoco" in entry_point:
        import mujoco

        mujoco.set_mju_user_warning(mujoco_warning)


def mujoco_warning(message: str) -> None:
    """MuJoCo's warning handler, from mujoco_warnings_once: a Python warning at the line that made the env."""
    if "attribute 'settotalmass' is deprecated" not in message:
        warnings.warn(f"MuJoCo: {message}", stacklevel=2)


def solved_return(env_id: str, target: float | None = None) -> float | None:
    """The return that counts as solving `env_id` (compare.py's and sweep.py's --target): `target` if
    given, else the env's reward threshold in gymnasium's registry (195 on CartPole-v0, 475 on
    CartPole-v1), or None where the registry has none (Pendulum-v1, an env of your own): the tools
    then compare returns alone, without the steps to a target."""
    if target is not None:
        if not np.isfinite(target):
            raise UsageError(f"--target must be a finite return, got {target}")
        return target
    env_spec(env_id)  # a bad id is refused here, in env_spec's words
    threshold = gym.spec(registered_id(env_id)).reward_threshold
    return None if threshold is None else float(threshold)


def registered_id(env_id: str) -> str:
    """The id an env is registered under: gymnasium's "module:EnvName-v0" imports module first."""
    return env_id.split(":", 1)[-1]


def make_envs(env_fns: list[Callable[[], gym.Env]], vectorization: str = "sync") -> gym.vector.VectorEnv:
    """Vector envs with the tutorial's semantics: an env whose episode ends resets in the same step
    (the final observation is in info["final_obs"])."""
    if vectorization == "sync":
        return gym.vector.SyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    env_fns = [functools.partial(in_worker, fn) for fn in env_fns]
    return gym.vector.AsyncVectorEnv(env_fns, autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)


def in_worker(env_fn: Callable[[], gym.Env]) -> gym.Env:
    """Make an async env in its worker process, which leaves SIGINT and SIGTERM to the trainer: a
    signal to the whole process group (Ctrl-C, a batch scheduler) must not kill the workers under
    it, or the trainer could not save its last.pt; it closes them itself."""
    if multiprocessing.parent_process() is not None:  # AsyncVectorEnv also makes one env in the trainer
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return env_fn()


def new_envs(env_id: str, num_envs: int, vectorization: str = "sync", **make_kwargs) -> gym.vector.VectorEnv:
    return make_envs([functools.partial(gym.make, env_id, **make_kwargs)] * num_envs, vectorization)


OBS_EPSILON = 1e-8  # gymnasium's NormalizeObservation default: obs -> (obs - mean) / sqrt(var + this)


@dataclass(frozen=True)
class Normalization:
    """What --norm-obs and --norm-reward ask of each env: CleanRL's wrappers, in its order."""

    obs_clip: float | None  # observations normalized by running statistics, then clipped; None: as they come
    reward_clip: float | None  # rewards scaled by the running std of the discounted return, then clipped
    gamma: float  # the discount of that return


def normalization(args) -> Normalization:
    return Normalization(
        args.obs_clip if args.norm_obs else None, args.reward_clip if args.norm_reward else None, args.gamma
    )


def make_normalized(
    env_id: str, norm: Normalization, frozen: bool = False, record_episodes: bool = False, **make_kwargs
) -> gym.Env:
    """gym.make(env_id) under gymnasium's normalization wrappers; `frozen` ones keep the statistics they
    are given (`use_obs_statistics`), as evaluation must. Each env keeps statistics of its own, as in
    CleanRL; `obs_statistics` merges them. With `record_episodes`, an episode's end puts its return
    and length in info["episode"] (`finished_episodes`), counted under the normalization, as CleanRL
    counts them: the env's own rewards."""
    mujoco_warnings_once(env_id)
    env = gym.make(env_id, **make_kwargs)
    if record_episodes:
        env = gym.wrappers.RecordEpisodeStatistics(env)
    if norm.obs_clip is not None:
        env = gym.wrappers.NormalizeObservation(env, epsilon=OBS_EPSILON)
        env.obs_rms = one_step_at_a_time(env.obs_rms)
        env.update_running_mean = not frozen
        c, shape = norm.obs_clip, env.observation_space.shape
        clip = functools.partial(np.clip, a_min=-c, a_max=c)
        env = gym.wrappers.TransformObservation(env, clip, gym.spaces.Box(-c, c, shape, np.float32))
    if norm.reward_clip is not None and not frozen:
        env = gym.wrappers.NormalizeReward(env, gamma=norm.gamma)
        env.return_rms = one_step_at_a_time(env.return_rms)
        env = gym.wrappers.ClipReward(env, -norm.reward_clip, norm.reward_clip)
    return env


class RunningMeanStdOfSteps(gym.wrappers.utils.RunningMeanStd):
    """gymnasium's running mean and variance, as its normalization wrappers update them, one step at a
    time: its arithmetic bit for bit (a batch of one has mean x and variance 0, so its update is
    `update_mean_var_count_from_moments` with those) without np.mean and np.var, which were most of
    its time. --norm-obs and --norm-reward update two of them at every env step: without those calls
    an env step of HalfCheetah-v5 took 141 to 144 us in the training loop against 181 to 190
    (docs/results.md, "The normalization wrappers' statistics"; tests/test_envs.py checks the bits)."""

    def update(self, x: np.ndarray) -> None:
        if len(x) != 1:
            return super().update(x)
        delta = x[0] - self.mean
        tot_count = self.count + 1
        self.mean = self.mean + delta / tot_count
        self.var = (self.var * self.count + np.square(delta) * self.count / tot_count) / tot_count
        self.count = tot_count


def one_step_at_a_time(rms: gym.wrappers.utils.RunningMeanStd) -> RunningMeanStdOfSteps:
    """`rms`, as it stands, updated by `RunningMeanStdOfSteps`."""
    fast = RunningMeanStdOfSteps()
    vars(fast).update(vars(rms))
    return fast


def new_training_envs(env_id: str, num_envs: int, vectorization: str, norm: Normalization) -> gym.vector.VectorEnv:
    """Training envs, each recording its episodes' returns and wrapped so that its state,
    normalization statistics and the episodes under way included, can be saved as data and restored."""
    return make_envs([functools.partial(make_capturable, env_id, norm)] * num_envs, vectorization)


def new_eval_envs(env_id: str, num_envs: int, vectorization: str, norm: Normalization) -> gym.vector.VectorEnv:
    """Envs for evaluation, where only each env's first episode counts, so the autoreset mode does not
    matter: the env's own array-vectorized version when it has one (CartPole does), as it is faster.
    Their observations are normalized, with frozen statistics, when training's are; rewards never are:
    an evaluation reports the env's own return."""
    if norm.obs_clip is not None:
        return make_envs([functools.partial(make_normalized, env_id, norm, frozen=True)] * num_envs, vectorization)
    if gym.spec(registered_id(env_id)).vector_entry_point is not None:
        return gym.make_vec(registered_id(env_id), num_envs=num_envs, vectorization_mode="vector_entry_point")
    return new_envs(env_id, num_envs, vectorization)


def obs_statistics(vector_env: gym.vector.VectorEnv) -> dict[str, Any]:
    """The running mean, variance and count of the observations that all of `vector_env`'s envs have
    seen, merged (Chan et al.'s parallel formula, as gymnasium's RunningMeanStd updates), as data."""
    first, *others = vector_env.get_attr("obs_rms")
    merged = copy.deepcopy(first)
    for rms in others:
        merged.update_from_moments(rms.mean, rms.var, rms.count)
    return {"mean": merged.mean, "var": merged.var, "count": float(merged.count)}


def use_obs_statistics(vector_env: gym.vector.VectorEnv, statistics: dict[str, Any]) -> None:
    """Give every env of `vector_env` (made with frozen normalization) these observation statistics."""
    vector_env.set_attr("obs_rms", running_mean_std(statistics))


def running_mean_std(statistics: dict[str, Any]) -> gym.wrappers.utils.RunningMeanStd:
    """`obs_statistics`'s data as the object gymnasium's NormalizeObservation keeps them in."""
    rms = gym.wrappers.utils.RunningMeanStd(shape=np.shape(statistics["mean"]))
    rms.mean, rms.var, rms.count = np.array(statistics["mean"]), np.array(statistics["var"]), statistics["count"]
    return rms


def record_video_env(env_id: str, norm: Normalization, folder: str, name: str) -> gym.Env:
    """An env that writes its first episode as an mp4 in `folder`, drawn off-screen."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # draw off-screen, without asking for a display
        # MuJoCo's default tries GLFW first, which without a display gets no OpenGL context and fails
        # fatally; EGL draws without one (read when the renderer is made, so setting it now is in time)
        os.environ.setdefault("MUJOCO_GL", "egl")
    env = make_normalized(env_id, norm, frozen=True, render_mode="rgb_array")
    with warnings.catch_warnings():
        # gymnasium warns of "overwriting existing videos" wherever the folder exists; each replay's
        # video has a name of its own (machinery/replay.py), so the earlier ones stay as they are
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
        return gym.wrappers.RecordVideo(env, folder, name_prefix=name, episode_trigger=lambda episode: episode == 0)


def finished_episodes(info: dict) -> list[tuple[float, int]]:
    """(return, length) of each training episode that ended in the vector step that gave `info`."""
    final = info.get("final_info", {})
    if "episode" not in final:
        return []
    episode, ended = final["episode"], final["_episode"]
    return [(float(r), int(n)) for r, n, e in zip(episode["r"], episode["l"], ended, strict=True) if e]


# ---- what GAE sees at an episode's end ---------------------------------------------------------
def time_limit_cuts(terminated: np.ndarray, truncated: np.ndarray, truncation_as_termination: bool) -> np.ndarray:
    """The envs whose episode a time limit ended without failure: these are bootstrapped, not cut.
    None are with `truncation_as_termination`: a time limit then ends the return, as in the tutorial."""
    return np.zeros_like(truncated) if truncation_as_termination else truncated & ~terminated


def episode_end_targets(
    rewards: np.ndarray, done: np.ndarray, cut_by_time: np.ndarray, final_values: np.ndarray, gamma: float
) -> tuple[np.ndarray, np.ndarray]:
    """The (reward, mask) pair that GAE sees for one step of every env.

    mask is 0 wherever an episode ended, since the next observation belongs to a new episode; an
    episode a time limit cut did not fail, so its reward is bootstrapped with gamma times the
    critic's value of its final observation.
    """
    return rewards + gamma * np.where(cut_by_time, final_values, 0.0), (~done).astype(np.float32)


def step_targets(
    value_of: Callable[[np.ndarray], np.ndarray],
    reward: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    info: dict,
    gamma: float,
    truncation_as_termination: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """`episode_end_targets` for one vector step, asking `value_of` (the critic) for the value of the
    final observation of each episode a time limit ended."""
    cut_by_time = time_limit_cuts(terminated, truncated, truncation_as_termination)
    final_values = np.zeros(len(cut_by_time), dtype=np.float32)
    if cut_by_time.any():
        final_values[cut_by_time] = value_of(np.stack(info["final_obs"][cut_by_time]))
    return episode_end_targets(reward, terminated | truncated, cut_by_time, final_values, gamma)


# ---- an env's state as plain data --------------------------------------------------------------
RENDER_ONLY = {"screen", "clock", "mujoco_renderer", "viewer", "render_mode"}


class NotData(Exception):
    """An attribute that is neither plain data nor a part of the env that is fixed at creation."""


class StateAsData(gym.Wrapper):
    """The outermost wrapper of a training env: `state_data()` returns the env's state as plain data
    (or {"not_data": what is not} when it cannot be captured), and assigning to `restore_state` puts such data back.

    Both are reached through a vector env's `call` and `set_attr`, in this process or another.
    """

    def state_data(self) -> dict | None:
        try:
            return {"layers": [capture_layer(env) for env in layers_below(self)]}
        except NotData as e:
            return {"not_data": str(e)}

    @property
    def restore_state(self) -> None:
        return None

    @restore_state.setter
    def restore_state(self, data: dict) -> None:
        layers = layers_below(self)
        if len(layers) == len(data["layers"]) + 1:  # saved before training envs recorded their episodes:
            # the recorder starts afresh, so the episode under way is logged from the resume on
            layers = [env for env in layers if not isinstance(env, gym.wrappers.RecordEpisodeStatistics)]
        if len(layers) != len(data["layers"]):
            raise ValueError("the saved env state has another stack of wrappers than this env")
        for env, saved in zip(layers, data["layers"], strict=True):
            restore_layer(env, saved)


def make_capturable(env_id: str, norm: Normalization) -> gym.Env:
    return StateAsData(make_normalized(env_id, norm, record_episodes=True))


def layers_below(wrapper: gym.Wrapper) -> list[gym.Env]:
    layers, env = [], wrapper.env
    while isinstance(env, gym.Wrapper):
        layers.append(env)
        env = env.env
    return [*layers, env]


def is_fixed(name: str, value: Any) -> bool:
    """Parts of an env set when it is made and never changed by stepping it: not saved."""
    if name in RENDER_ONLY or name == "env":
        return True
    fixed_types = (gym.Space, gym.envs.registration.EnvSpec, type(None))
    return isinstance(value, fixed_types) or callable(value) or type(value).__name__ == "MjModel"


def capture_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str | np.generic):
        return value
    if isinstance(value, np.ndarray) and value.dtype != object:
        return value.copy()
    if isinstance(value, list | tuple):
        return type(value)(capture_value(v) for v in value)
    if isinstance(value, collections.deque):  # e.g. RecordEpisodeStatistics' last returns
        return {"__deque__": [capture_value(v) for v in value], "maxlen": value.maxlen}
    if isinstance(value, dict):
        return {k: capture_value(v) for k, v in value.items() if isinstance(k, str) and not is_fixed(k, v)}
    if isinstance(value, np.random.Generator):
        return {"__generator__": value.bit_generator.state}
    if type(value).__module__.startswith("gymnasium.") or isinstance(value, RunningMeanStdOfSteps):
        # a wrapper's own objects, e.g. its running statistics
        return {"__object__": {k: capture_value(v) for k, v in vars(value).items() if not is_fixed(k, v)}}
    raise NotData(f"a {type(value).__name__}")


def capture_layer(env: gym.Env) -> dict:
    """One wrapper's or the base env's state: its plain attributes, and a MuJoCo simulation's full
    integration state (mj_getState), which is what makes its next step exactly the one it would be."""
    state = {}
    for name, value in vars(env).items():
        if type(value).__name__ == "MjData":
            import mujoco

            kind = mujoco.mjtState.mjSTATE_INTEGRATION
            state["__mujoco_state__"] = np.empty(mujoco.mj_stateSize(env.model, kind))
            mujoco.mj_getState(env.model, value, state["__mujoco_state__"], kind)
        elif not is_fixed(name, value):
            try:
                state[name] = capture_value(value)
            except NotData as e:
                raise NotData(f"{type(env).__name__}.{name} is {e}") from None
    return {"class": type(env).__name__, "state": state}


def restore_value(current: Any, saved: Any) -> Any:
    """The value an attribute gets back: objects and generators are restored in place."""
    if isinstance(saved, dict) and saved.keys() == {"__generator__"}:
        current.bit_generator.state = saved["__generator__"]
        return current
    if isinstance(saved, dict) and saved.keys() == {"__deque__", "maxlen"}:
        return collections.deque(saved["__deque__"], maxlen=saved["maxlen"])
    if isinstance(saved, dict) and saved.keys() == {"__object__"}:
        for k, v in saved["__object__"].items():
            setattr(current, k, restore_value(getattr(current, k, None), v))
        return current
    if isinstance(saved, dict) and isinstance(current, dict):
        return {**current, **{k: restore_value(current.get(k), v) for k, v in saved.items()}}
    return saved


def restore_layer(env: gym.Env, saved: dict) -> None:
    if saved["class"] != type(env).__name__:
        raise ValueError(f"the saved env state is of a {saved['class']}, not a {type(env).__name__}")
    state = dict(saved["state"])
    physics = state.pop("__mujoco_state__", None)
    for name, value in state.items():
        setattr(env, name, restore_value(getattr(env, name, None), value))
    if physics is not None:
        import mujoco

        mujoco.mj_setState(env.model, env.data, physics, mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(env.model, env.data)  # quantities derived from the state, as after a step
