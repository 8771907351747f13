"""Watch, inspect, replay, resume: the research workflow through the scripts' command line."""

import json
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import ROOT, run_script, scalars, short_run
from spikingjelly.activation_based import neuron

import PPO
import Spiking_PPO
from machinery import envs
from machinery.checkpoints import agent_env, from_data, load_agent
from machinery.run import eval_seed

UPDATE_TAGS = [
    "losses/actor_loss",
    "losses/critic_loss",
    "losses/entropy",
    "losses/approx_kl",
    "losses/clip_frac",
    "losses/explained_variance",
    "charts/learning_rate",
    "charts/steps_per_second",
]
SNN_TAGS = [
    "snn/firing_rate/actor",
    "snn/firing_rate/critic",
    "snn/never_firing_fraction/actor",
    "snn/never_firing_fraction/critic",
]


@pytest.mark.parametrize("script, extra_tags", [("Spiking_PPO.py", SNN_TAGS), ("PPO.py", [])])
def test_every_update_logs_finite_statistics(script, extra_tags, runs_dir):
    run_dir, _ = short_run(script, runs_dir)
    logged = scalars(run_dir)
    for tag in UPDATE_TAGS + extra_tags:
        assert [step for step, _ in logged[tag]] == [128, 256], tag
        assert all(math.isfinite(value) for _, value in logged[tag]), tag
    for tag in extra_tags:
        assert all(0.0 <= value <= 1.0 for _, value in logged[tag]), tag
    assert not any(tag.startswith("snn/") for tag in logged) or extra_tags


def test_firing_rates_count_the_spikes_of_the_hidden_layer():
    torch.manual_seed(0)
    model = Spiking_PPO.ActorCritic(4, 2, 8, T=4)
    with torch.no_grad():
        model.actor[0].weight.zero_()
        model.actor[0].bias.copy_(torch.tensor([0.0, 0.3, 0.5, 1.0, 2.0, -1.0, 0.26, 0.99]))
    # over 4 steps: 0 and -1 never fire, 0.3 and 0.26 fire at step 4, 0.5 at steps 2 and 4,
    # 0.99 at step 2 (0.99 + 0.99 >= 1) and 4, 1.0 and 2.0 at every step
    scalars_ = Spiking_PPO.AGENT.diagnostics(model, torch.zeros(3, 4))
    assert scalars_["snn/never_firing_fraction/actor"] == pytest.approx(2 / 8)
    assert scalars_["snn/firing_rate/actor"] == pytest.approx(3.5 / 8)


def test_firing_rates_are_reported_for_every_hidden_layer():
    model = Spiking_PPO.ActorCritic(4, 2, 2, T=4, hidden_layers=2)
    with torch.no_grad():
        for p in model.actor.parameters():
            p.zero_()
        model.actor[0].bias.copy_(torch.tensor([1.0, 0.5]))  # layer 1 fires at steps 1-4, and at 2 and 4
        model.actor[2].weight.copy_(torch.tensor([[0.5, 0.0], [0.0, 0.4]]))
    # layer 2 sees 0.5 at every step (fires at 2 and 4), and 0.4 at steps 2 and 4 only (0.8 < 1: never)
    scalars_ = Spiking_PPO.AGENT.diagnostics(model, torch.zeros(3, 4))
    assert scalars_["snn/firing_rate/actor"] == pytest.approx(0.75)
    assert scalars_["snn/firing_rate/actor_layer2"] == pytest.approx(0.25)
    assert scalars_["snn/never_firing_fraction/actor_layer2"] == pytest.approx(0.5)
    assert {"snn/firing_rate/critic", "snn/firing_rate/critic_layer2"} <= scalars_.keys()


def test_firing_rates_of_a_changed_network_count_its_own_neurons_spikes():
    model = Spiking_PPO.ActorCritic(4, 2, 8, T=4, impl="reference")
    model.actor[1] = neuron.LIFNode(tau=2.0)  # as a reader might change branch(); the fast path refuses it
    with torch.no_grad():
        model.actor[0].weight.zero_()
        model.actor[0].bias.copy_(torch.tensor([0.0, 1.0, 2.0, 4.0, -1.0, 1.5, 3.0, 1.9]))
    # v <- v + (h - v) / 2 over 4 steps: 0, 1.0 (0.5, 0.75, 0.875, 0.9375) and -1 never fire; 2, 4 and 3
    # fire at every step; 1.5 (0.75, 1.125) and 1.9 (0.95, 1.425) at steps 2 and 4: 16 spikes of 32
    scalars_ = Spiking_PPO.AGENT.diagnostics(model, torch.zeros(3, 4))
    assert scalars_["snn/firing_rate/actor"] == pytest.approx(16 / 32)
    assert scalars_["snn/never_firing_fraction/actor"] == pytest.approx(3 / 8)
    assert {"snn/firing_rate/critic", "snn/never_firing_fraction/critic"} <= scalars_.keys()


def test_a_report_or_video_that_cannot_be_written_is_refused_before_the_replay_in_one_line(runs_dir, tmp_path):
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir)
    (tmp_path / "file").write_text("")
    report = tmp_path / "file" / "report.json"
    result = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"), "--report", str(report))
    assert result.returncode == 2 and result.stdout == "", result.stdout  # nothing played
    assert result.stderr.strip() == f"error: --report {report}: {report.parent} is a file, not a folder"
    folder = tmp_path / "a-folder.json"
    folder.mkdir()
    result = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"), "--report", str(folder))
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.strip() == f"error: --report {folder}: {folder} is a folder; name a file to write"
    (run_dir / "videos").write_text("")  # where --capture-video writes: found before, not after, the episodes
    result = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"), "--capture-video")
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.strip() == f"error: --capture-video: {run_dir / 'videos'} is a file, not a folder"
    checkpoint = run_dir / "best.pt"  # --report given the checkpoint itself would write over it
    before = checkpoint.read_bytes()
    result = run_script("Spiking_PPO.py", "--eval-only", str(checkpoint), "--report", str(checkpoint))
    assert result.returncode == 2 and result.stdout == "", result.stdout
    assert result.stderr.strip() == (
        f"error: --report {checkpoint}: {checkpoint} exists and is not a JSON object; name another file, or move "
        "that one away"
    )
    assert checkpoint.read_bytes() == before


def test_ctrl_c_in_a_replay_ends_it_in_one_line_with_the_signals_status(runs_dir, monkeypatch):
    from machinery import commands

    run_dir, _ = short_run("Spiking_PPO.py", runs_dir)

    def interrupted(*args):
        raise KeyboardInterrupt  # what Ctrl-C raises outside training, which handles its signals

    monkeypatch.setattr(commands, "replay", interrupted)
    result = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"))
    assert result.returncode == 130 and result.stderr == "stopped by SIGINT\n"


def test_eval_only_replays_a_checkpoint_and_prints_mean_and_std(runs_dir):
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir)
    result = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"), "--eval-episodes", "4")
    assert result.returncode == 0, result.stderr
    assert "4 episodes of CartPole-v0, return" in result.stdout and "(mean ± std)" in result.stdout
    one = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"), "--eval-episodes", "1")
    assert re.search(r"\(step \d+\): 1 episode of CartPole-v0, return [\d.]+\n", one.stdout), one.stdout


def test_a_run_that_has_not_evaluated_yet_has_no_best_pt_and_the_error_says_to_replay_its_last_pt(runs_dir):
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir, "--eval-interval", "100000")
    assert not (run_dir / "best.pt").exists()
    result = run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "best.pt"))
    expected = f"error: {run_dir}/best.pt: no such file; the run has not evaluated yet, replay {run_dir}/last.pt\n"
    assert result.returncode == 2 and result.stderr == expected
    assert run_script("Spiking_PPO.py", "--eval-only", str(run_dir / "last.pt")).returncode == 0


@pytest.mark.parametrize("content", [None, b"not a checkpoint at all", b"\x80\x04corrupt"])
def test_eval_only_refuses_a_missing_or_corrupt_file(content, tmp_path):
    path = tmp_path / "best.pt"
    if content is not None:
        path.write_bytes(content)
    result = run_script("Spiking_PPO.py", "--eval-only", str(path))
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and str(path) in result.stderr


def test_render_without_a_display_is_refused(runs_dir, monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    result = run_script("Spiking_PPO.py", "--eval-only", "any.pt", "--render")
    assert result.returncode == 2 and "--render needs a display" in result.stderr


def test_a_resumed_run_continues_the_same_curve(runs_dir):
    whole, _ = short_run("Spiking_PPO.py", runs_dir / "whole", "--max-steps", "512")
    first, _ = short_run("Spiking_PPO.py", runs_dir / "split", "--max-steps", "256")
    resumed = run_script("Spiking_PPO.py", "--resume", str(first), "--max-steps", "512")
    assert resumed.returncode == 0 and "note:" not in resumed.stderr, resumed.stderr
    tag = "Spiking-PPO-CartPole-v0/Reward"
    assert [s for s, _ in scalars(first)[tag]] == [64 * i for i in range(1, 9)]
    assert scalars(first)[tag] == scalars(whole)[tag]
    assert scalars(first)["losses/actor_loss"] == scalars(whole)["losses/actor_loss"]


def test_a_run_trained_further_with_anneal_lr_says_its_schedule_moves_and_follows_the_longer_one(runs_dir):
    """A finished run given a larger --max-steps: its learning rate goes on as in a run of the new
    length, not from the near-0 rate the run had ended at, and the resume says so."""
    whole, _ = short_run("PPO.py", runs_dir / "whole", "--max-steps", "512", "--anneal-lr")
    first, _ = short_run("PPO.py", runs_dir / "split", "--max-steps", "256", "--anneal-lr")
    resumed = run_script("PPO.py", "--resume", str(first), "--max-steps", "512")
    assert resumed.returncode == 0 and resumed.stderr == (
        "note: --anneal-lr: the learning rate now decays to 0 at step 512, not 256, as in a run of --max-steps 512 "
        "from its start\n"
    )
    split, uninterrupted = (scalars(run_dir)["charts/learning_rate"] for run_dir in (first, whole))
    assert [step for step, _ in split] == [128, 256, 384, 512]
    assert split[2:] == uninterrupted[2:] and split[1][1] == uninterrupted[2][1]  # 1e-3 * (1 - 2/4) == 1e-3 * (1 - 1/2)


@pytest.mark.parametrize("script, env_id", [("Spiking_PPO.py", "CartPole-v0"), ("PPO.py", "InvertedPendulum-v5")])
def test_a_run_stopped_inside_a_rollout_resumes_on_the_same_curve(script, env_id, runs_dir):
    """last.pt of a stop between two updates (here: the first evaluation reached --stop-at-return)
    holds the partial rollout and the envs mid-episode; resuming gives the uninterrupted curve."""
    argv = ["--env-id", env_id, "--max-steps", "384", "--eval-interval", "100"]  # evaluations inside rollouts
    whole, _ = short_run(script, runs_dir / "whole", *argv)
    stopped, result = short_run(script, runs_dir / "stopped", *argv, "--stop-at-return=-1e9")
    assert "done: 100 steps" in result.stdout
    resumed = run_script(script, "--resume", str(stopped), "--stop-at-return", "1e9")
    assert resumed.returncode == 0, resumed.stderr
    tag = f"{'Spiking-PPO' if script == 'Spiking_PPO.py' else 'PPO'}-{env_id}/Reward"
    assert [step for step, _ in scalars(whole)[tag]] == [100, 200, 300]
    assert scalars(stopped)[tag] == scalars(whole)[tag]
    for logged in ("losses/actor_loss", "charts/episodic_return", "charts/episodic_length"):
        assert scalars(stopped)[logged] == scalars(whole)[logged], logged


def test_resume_refuses_to_change_the_training_flags(runs_dir):
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir)
    result = run_script("Spiking_PPO.py", "--resume", str(run_dir), "--hidden-size", "64")
    assert result.returncode == 2 and result.stderr == (
        f"error: {run_dir} was made with --hidden-size 32, not 64: leave --hidden-size out (of the training flags, "
        "only --max-steps, --stop-at-return, --device, --threads, --compile may be given here)\n"
    )


def test_capture_video_writes_an_mp4_beside_the_checkpoint(runs_dir, recwarn):
    run_dir, _ = short_run("PPO.py", runs_dir)
    result = run_script("PPO.py", "--eval-only", str(run_dir / "best.pt"), "--capture-video", "--eval-episodes", "2")
    assert result.returncode == 0, result.stderr
    (video,) = (run_dir / "videos").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp" and video.stat().st_size > 1000
    step = torch.load(run_dir / "best.pt", weights_only=True)["step"]
    assert video.name == f"best-step{step}-seed1-episode-0.mp4" and f"video: {video}" in result.stdout
    argv = ["--eval-only", str(run_dir / "best.pt"), "--capture-video", "--eval-episodes", "2", "--seed", "2"]
    assert run_script("PPO.py", *argv, "--mean-action").returncode == 0  # another episode, in a file of its own
    assert sorted(v.name for v in (run_dir / "videos").glob("*.mp4")) == [
        video.name,
        f"best-step{step}-seed2-mean-action-episode-0.mp4",
    ]
    first = video.read_bytes()
    assert run_script("PPO.py", *argv).returncode == 0  # a third, into the folder the others are in
    assert len(list((run_dir / "videos").glob("*.mp4"))) == 3 and video.read_bytes() == first
    assert not [w for w in recwarn if "Overwriting existing videos" in str(w.message)]  # gymnasium's, of any folder


def test_capture_video_draws_a_mujoco_task_off_screen_without_a_display(runs_dir):
    run_dir, _ = short_run("PPO.py", runs_dir, "--env-id", "InvertedPendulum-v5")
    # in a process of its own, as a user runs it on a machine with no display and no MUJOCO_GL set
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "MUJOCO_GL")}
    argv = ["--eval-only", str(run_dir / "best.pt"), "--capture-video", "--eval-episodes", "2"]
    result = subprocess.run([sys.executable, str(ROOT / "PPO.py"), *argv], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-2000:]
    (video,) = (run_dir / "videos").glob("*.mp4")
    assert video.read_bytes()[4:8] == b"ftyp" and video.stat().st_size > 1000


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
def test_the_actors_cost_is_logged_at_the_first_evaluation_and_every_cost_interval(script, runs_dir):
    run_dir, _ = short_run(script, runs_dir, "--max-steps", "512", "--cost-interval", "200")
    logged = scalars(run_dir)
    for tag in ("cost/actor_synops_per_decision", "cost/actor_energy_pj_per_decision"):
        # evaluations every 64 steps; the first, and the first at or after 200 and 400
        assert [step for step, _ in logged[tag]] == [64, 256, 448], tag
    energies = [value for _, value in logged["cost/actor_energy_pj_per_decision"]]
    assert all(value > 0 for value in energies)
    synops = [value for _, value in logged["cost/actor_synops_per_decision"]]
    assert (max(synops) > 0) == (script == "Spiking_PPO.py")  # the ANN has no spikes to count


def test_no_cost_is_measured_with_cost_interval_0(runs_dir):
    run_dir, _ = short_run("PPO.py", runs_dir, "--cost-interval", "0")
    assert not [tag for tag in scalars(run_dir) if tag.startswith("cost/")]


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
def test_both_agents_train_on_mujoco_with_the_cleanrl_preset(script, runs_dir, recwarn):
    short = ["--num-steps", "64", "--mini-batch-size", "32", "--max-steps", "128", "--eval-interval", "128"]
    result = run_script(
        script,
        "--preset",
        "cleanrl",
        "--env-id",
        "HalfCheetah-v5",
        *short,
        "--eval-episodes",
        "2",
        "--runs-dir",
        str(runs_dir),
    )
    assert result.returncode == 0, result.stderr
    assert "step     128 | eval return" in result.stdout
    assert not [w for w in recwarn if "settotalmass" in str(w.message)]  # MuJoCo 4's, on gymnasium's model
    (run_dir,) = runs_dir.iterdir()
    ckpt = torch.load(run_dir / "best.pt", weights_only=True)
    assert ckpt["args"]["hidden_layers"] == 2 and ckpt["args"]["norm_obs"] is True
    assert ckpt["obs_statistics"]["count"] > 128  # the observations of 128 steps, resets included


def test_a_checkpoint_replays_with_the_observation_statistics_it_was_trained_with(runs_dir):
    """The replay's return is the one an evaluation with the saved statistics gives, and not the one
    with other statistics: replay uses what the checkpoint holds."""
    flags = ["--env-id", "Pendulum-v1", "--norm-obs", "--max-steps", "256", "--eval-interval", "256"]
    assert run_script("PPO.py", *flags, "--runs-dir", str(runs_dir)).returncode == 0
    (run_dir,) = runs_dir.iterdir()
    report = run_dir / "reports" / "report.json"  # a folder --report makes
    result = run_script(
        "PPO.py", "--eval-only", str(run_dir / "best.pt"), "--eval-episodes", "3", "--report", str(report)
    )
    assert result.returncode == 0, result.stderr
    replayed = json.loads(report.read_text())["return_mean"]

    model, ckpt = load_agent(run_dir / "best.pt", PPO.AGENT)
    statistics = from_data(ckpt["obs_statistics"])
    norm = envs.Normalization(obs_clip=10.0, reward_clip=None, gamma=0.99)
    spec = envs.env_spec("Pendulum-v1")

    def evaluate_with(stats):
        eval_envs = envs.new_eval_envs("Pendulum-v1", 3, "sync", norm)
        envs.use_obs_statistics(eval_envs, stats)
        return Spiking_PPO.evaluate(model, eval_envs, spec, eval_seed(1, 0), "cpu").mean()

    assert replayed == pytest.approx(evaluate_with(statistics), rel=1e-6)
    other = {"mean": statistics["mean"] + 1.0, "var": statistics["var"] * 4, "count": statistics["count"]}
    assert replayed != pytest.approx(evaluate_with(other), rel=1e-3)


def test_agent_env_gives_a_loaded_network_the_observations_it_was_trained_on(runs_dir):
    """README, "Loading a checkpoint": normalized and clipped by the saved statistics, held fixed,
    as gymnasium's NormalizeObservation computes it (epsilon 1e-8); the env's own without --norm-obs."""
    for flags in (["--norm-obs", "--obs-clip", "0.5"], []):
        argv = ["--env-id", "Pendulum-v1", *flags, "--max-steps", "256", "--eval-interval", "256"]
        result = run_script("PPO.py", *argv, "--runs-dir", str(runs_dir / str(len(flags))))
        assert result.returncode == 0, result.stderr
        (run_dir,) = (runs_dir / str(len(flags))).iterdir()
        _, ckpt = load_agent(run_dir / "best.pt", PPO.AGENT)
        env, raw = agent_env(ckpt), gym.make("Pendulum-v1")
        obs, raw_obs = env.reset(seed=3)[0], raw.reset(seed=3)[0]
        clipped = 0
        for _ in range(50):
            expected = raw_obs
            if flags:
                stats = from_data(ckpt["obs_statistics"])
                expected = (raw_obs - stats["mean"]) / np.sqrt(stats["var"] + 1e-8)
                clipped += np.abs(expected).max() > 0.5
                expected = np.clip(expected, -0.5, 0.5)
            np.testing.assert_allclose(obs, expected, rtol=1e-6, atol=1e-7)
            obs, raw_obs = env.step([0.5])[0], raw.step([0.5])[0]
        assert (clipped > 0) == bool(flags)  # the clip at --obs-clip was seen to apply


def test_the_readmes_training_example_trains_with_the_preset_applied(runs_dir):
    """README, "Training from Python": its code as written, with a short budget and this test's runs
    directory added to its command line."""
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Training from Python", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    short = '"--seed", "3", "--max-steps", "2048", "--eval-interval", "1024", "--quiet", "--runs-dir", RUNS]'
    assert example.count('"--seed", "3"]') == 1
    namespace = {"RUNS": str(runs_dir)}
    exec(example.replace('"--seed", "3"]', short), namespace)
    summary = namespace["summary"]
    run_dir = Path(summary["run_dir"])
    assert run_dir.parent == runs_dir and run_dir.name.startswith("Hopper-v5__Spiking_PPO__3__")
    assert summary["steps"] == 2048 and math.isfinite(summary["best"])
    trained = torch.load(run_dir / "last.pt", weights_only=True)["args"]
    cleanrl = {"hidden_size": 64, "hidden_layers": 2, "norm_obs": True, "learning_rate": 3e-4, "num_steps": 2048}
    assert {k: trained[k] for k in cleanrl} == cleanrl  # the preset's values, not the flags' own defaults


def test_the_readmes_loading_example_runs_on_a_normalized_continuous_checkpoint(runs_dir):
    argv = ["--env-id", "Pendulum-v1", "--norm-obs", "--max-steps", "128", "--eval-interval", "128"]
    assert run_script("Spiking_PPO.py", *argv, "--runs-dir", str(runs_dir)).returncode == 0
    (run_dir,) = runs_dir.iterdir()
    readme = (ROOT / "README.md").read_text()
    example = readme.split("## Loading a checkpoint", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(example.replace("runs/CartPole-v0__Spiking_PPO__1__1795480000/best.pt", str(run_dir / "best.pt")), namespace)
    assert namespace["ckpt"]["env_id"] == "Pendulum-v1" and namespace["obs"].shape == (3,)
    statistics = from_data(namespace["ckpt"]["obs_statistics"])  # its observations normalized with them
    np.testing.assert_array_equal(namespace["env"].get_wrapper_attr("obs_rms").mean, statistics["mean"])


def test_the_readmes_env_of_your_own_trains_as_the_readme_says(runs_dir, tmp_path):
    """README, "An env of your own": its module and its command, as a user runs them from the module's folder,
    for a shorter run."""
    readme = (ROOT / "README.md").read_text().split("**An env of your own**", 1)[1]
    module, command = readme.split("```python\n", 1)[1].split("```", 1)[0], readme.split("```bash\n", 1)[1]
    (tmp_path / "my_envs.py").write_text(module)
    variables, python, script, *argv = command.split("\n", 1)[0].split()
    assert (variables, python, script) == ("PYTHONPATH=.", "python", "Spiking_PPO.py"), command
    short = ["--max-steps", "256", "--eval-interval", "128", "--runs-dir", str(runs_dir)]
    env = {**os.environ, "PYTHONPATH": "."}
    result = subprocess.run(
        [sys.executable, str(ROOT / script), *argv, *short], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    (run_dir,) = runs_dir.iterdir()
    assert run_dir.name.startswith("my_envs:FlatFrozenLake-v0__Spiking_PPO__1__")
    assert torch.load(run_dir / "last.pt", weights_only=True)["envs"] is not None


def test_mean_action_replays_the_policy_without_its_noise(runs_dir):
    """--eval-only --mean-action: the return of the same episodes played with the policy's spread at
    zero (a sample of a Gaussian of std 0 is its mean), and not the return of the sampled policy."""
    flags = ["--env-id", "Pendulum-v1", "--norm-obs", "--max-steps", "256", "--eval-interval", "256"]
    assert run_script("Spiking_PPO.py", *flags, "--runs-dir", str(runs_dir)).returncode == 0
    (run_dir,) = runs_dir.iterdir()
    returns = {}
    for mode in ("sampled", "mean"):
        report = run_dir / f"{mode}.json"
        argv = ["--eval-only", str(run_dir / "best.pt"), "--eval-episodes", "3", "--report", str(report)]
        result = run_script("Spiking_PPO.py", *argv, *(["--mean-action"] if mode == "mean" else []))
        assert result.returncode == 0, result.stderr
        assert result.stdout.count("mean action") == (mode == "mean")
        returns[mode] = json.loads(report.read_text())
        assert returns[mode]["mean_action"] == (mode == "mean")

    model, ckpt = load_agent(run_dir / "best.pt", Spiking_PPO.AGENT)
    with torch.no_grad():
        model.log_std.fill_(-200.0)  # exp(-200) is 0 in float32
    eval_envs = envs.new_eval_envs("Pendulum-v1", 3, "sync", envs.Normalization(10.0, None, 0.99))
    envs.use_obs_statistics(eval_envs, from_data(ckpt["obs_statistics"]))
    noiseless = Spiking_PPO.evaluate(model, eval_envs, envs.env_spec("Pendulum-v1"), eval_seed(1, 0), "cpu").mean()
    assert returns["mean"]["return_mean"] == pytest.approx(noiseless, rel=1e-6)
    assert returns["sampled"]["return_mean"] != pytest.approx(noiseless, rel=1e-3)


def test_mean_action_without_eval_only_is_refused(runs_dir):
    result = run_script("Spiking_PPO.py", "--mean-action", "--runs-dir", str(runs_dir))
    assert result.returncode == 2 and "--mean-action" in result.stderr and "--eval-only" in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def prose(markdown: str) -> str:
    """A Markdown file without its code blocks (whose `#` lines and brackets are code, not headings or links)."""
    return re.sub(r"```.*?```", "", markdown, flags=re.S)


def headings(markdown: str) -> set[str]:
    """The anchors GitHub gives a Markdown file's headings: lowercase, punctuation dropped, spaces as hyphens."""
    return {
        re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
        for h in re.findall(r"^#+ (.*)$", prose(markdown), re.M)
    }


def test_every_link_in_the_documentation_reaches_a_file_and_a_heading_of_the_repository():
    """README, docs/ and bench/'s Markdown link to one another's sections; a heading renamed or a
    section moved leaves a link that opens the file at its top, or nothing."""
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "bench").glob("*.md"))]
    broken, links = [], 0
    for page in pages:
        for target in re.findall(r"\]\(([^)\s]+)\)", prose(page.read_text())):
            if re.match(r"[a-z]+:", target):  # a web address
                continue
            links += 1
            path, _, anchor = target.partition("#")
            file = (page.parent / path) if path else page
            if not file.exists() or (anchor and file.suffix == ".md" and anchor not in headings(file.read_text())):
                broken.append(f"{page.relative_to(ROOT)}: {target}")
    assert links > 50 and not broken, broken


def test_the_readmes_table_of_modules_names_every_module_of_the_package():
    """README, "Where to find what": a row per module of machinery/, each a file that is there."""
    readme = (ROOT / "README.md").read_text()
    listed = re.findall(r"^\| `machinery/(\w+)\.py` \|", readme, re.M)
    modules = sorted(p.stem for p in (ROOT / "machinery").glob("*.py") if p.stem != "__init__")
    assert sorted(listed) == modules
