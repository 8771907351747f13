"""Both scripts through their command line (machinery/commands.py), as a user runs them."""

import dataclasses
import re

import pytest
import torch
from helpers import ROOT, run_process, run_script, scalars, short_run

import PPO
import Spiking_PPO
from machinery.checkpoints import CheckpointError, load_agent
from machinery.cli import UsageError, check_positive, parse_args

SHORT_RUN = ["--max-steps", "300", "--eval-interval", "100", "--eval-episodes", "3", "--ppo-epochs", "2"]


def only_run_dir(runs_dir):
    dirs = list(runs_dir.iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


@pytest.mark.parametrize("script, agent", [("Spiking_PPO.py", Spiking_PPO.AGENT), ("PPO.py", PPO.AGENT)])
def test_a_short_run_logs_rewards_and_saves_checkpoints_that_load(script, agent, runs_dir):
    result = run_script(script, *SHORT_RUN, "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    run_dir = only_run_dir(runs_dir)
    assert run_dir.name.startswith(f"CartPole-v0__{script[:-3]}__1__")

    rewards = scalars(run_dir)[f"{agent.name}-CartPole-v0/Reward"]
    assert [step for step, _ in rewards] == [100, 200, 300]
    assert all(1 <= value <= 200 for _, value in rewards)
    assert [line.split("|")[0].split() for line in result.stdout.splitlines() if line.startswith("step")] == [
        ["step", "100"],
        ["step", "200"],
        ["step", "300"],
    ]

    model, ckpt = load_agent(run_dir / "best.pt", agent)
    assert ckpt["eval_mean"] == pytest.approx(max(value for _, value in rewards))
    assert ckpt["step"] in (100, 200, 300)
    dist, value = model(torch.zeros(2, 4))
    assert dist.loc.shape == (2, 2) and value.shape == (2, 1)
    _, last = load_agent(run_dir / "last.pt", agent)
    assert last["step"] == 384  # --max-steps 300 in whole rollouts of 128


def test_same_seed_gives_the_same_eval_returns(runs_dir):
    outputs = [run_script("Spiking_PPO.py", *SHORT_RUN, "--runs-dir", str(runs_dir / str(i))) for i in range(2)]
    curves = [scalars(only_run_dir(runs_dir / str(i)))["Spiking-PPO-CartPole-v0/Reward"] for i in range(2)]
    assert all(o.returncode == 0 for o in outputs)
    assert curves[0] == curves[1]


def test_a_checkpoint_of_one_agent_is_refused_by_the_other(runs_dir):
    assert run_script("PPO.py", *SHORT_RUN, "--runs-dir", str(runs_dir)).returncode == 0
    with pytest.raises(CheckpointError, match="a PPO checkpoint, not Spiking-PPO"):
        load_agent(only_run_dir(runs_dir) / "best.pt", Spiking_PPO.AGENT)


BAD_INPUTS = [
    (["--num-envs", "0"], "--num-envs must be an integer > 0, got 0"),
    (["--max-steps", "-5"], "--max-steps must be an integer > 0, got -5"),
    (["--eval-episodes", "0"], "--eval-episodes must be an integer > 0, got 0"),
    (["--cost-interval", "-1"], "--cost-interval must be an integer >= 0, got -1"),
    (["--learning-rate", "0"], "--learning-rate must be a finite number > 0, got 0.0"),
    (["--gae-lambda", "-0.1"], "--gae-lambda must be in [0, 1], got -0.1"),
    (["--gamma", "nan"], "--gamma must be in [0, 1], got nan"),
    (["--mini-batch-size", "1024"], "--mini-batch-size 1024 is larger than a rollout"),
    (["--norm-adv", "--mini-batch-size", "1"], "--mini-batch-size 1 with --norm-adv: one sample has no standard"),
    (["--preset", "cleanrl", "--mini-batch-size", "1"], "--mini-batch-size 1 with --norm-adv"),  # the preset's
    (["--num-envs", "two"], "--num-envs: invalid integer value"),
    (["--max-steps", "1e-3"], "argument --max-steps: invalid integer value: '1e-3'"),
    (["--max-grad-norm", "off"], "argument --max-grad-norm: invalid float (or none) value: 'off'"),
    (["--target", "0.7"], "unrecognized arguments: --target 0.7"),  # compare.py's flag, not --target-kl abbreviated
    (["--env-id", "NoSuchEnv-v0"], "--env-id 'NoSuchEnv-v0'"),
    (["--env-id", "Blackjack-v1"], "is not a flat Box"),
    (["--env-id", "FrozenLake-v1"], "is not a flat Box, which the networks take: register the env wrapped in"),
]


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
@pytest.mark.parametrize("argv, message", BAD_INPUTS)
def test_bad_input_is_one_line_exit_2_and_creates_no_run_directory(script, argv, message, runs_dir):
    result = run_script(script, *argv, "--runs-dir", str(runs_dir))
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert not runs_dir.exists()


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
def test_the_interpreter_exits_as_main_says(script, runs_dir):
    """The tests above run the command lines in-process; here the scripts themselves, as a user starts them."""
    bad = run_process(script, "--num-envs", "0", "--runs-dir", str(runs_dir))
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "--num-envs must be" in bad.stderr
    assert not runs_dir.exists()
    good = run_process(script, *SHORT_RUN, "--runs-dir", str(runs_dir))
    assert good.returncode == 0 and good.stdout.startswith("step") and "done: " in good.stdout, good.stderr


@pytest.mark.parametrize("threads", [1, 2])
def test_threads_sets_the_torch_threads_training_runs_on(threads, runs_dir, monkeypatch):
    seen = []
    real_update = Spiking_PPO.ppo_update
    monkeypatch.setattr(
        Spiking_PPO, "ppo_update", lambda *a, **k: seen.append(torch.get_num_threads()) or real_update(*a, **k)
    )
    argv = ["--max-steps", "8", "--num-steps", "4", "--mini-batch-size", "4", "--threads", str(threads)]
    before = torch.get_num_threads()
    torch.set_num_threads(3 - threads)  # the other count, so the flag has something to change
    try:
        assert Spiking_PPO.main(PPO.AGENT, [*argv, "--quiet", "--runs-dir", str(runs_dir)]) == 0
    finally:
        torch.set_num_threads(before)
    assert seen == [threads, threads]


def test_the_snn_flags_are_refused_by_the_ann_with_the_script_that_takes_them(runs_dir):
    result = run_script("PPO.py", "--T", "8", "--runs-dir", str(runs_dir))
    assert result.returncode == 2 and not runs_dir.exists()
    assert result.stderr == "error: unrecognized arguments: --T 8; --T is a flag of Spiking_PPO.py, not of PPO.py\n"


def test_the_ann_flags_are_refused_by_the_snn_with_the_script_that_takes_them_and_no_word_for_the_others(runs_dir):
    result = run_script("Spiking_PPO.py", "--activation=tanh", "--bogus", "--runs-dir", str(runs_dir))
    assert result.returncode == 2 and result.stderr == (
        "error: unrecognized arguments: --activation=tanh --bogus; --activation is a flag of PPO.py, not of "
        "Spiking_PPO.py\n"
    )
    assert run_script("Spiking_PPO.py", "--bogus").stderr == "error: unrecognized arguments: --bogus\n"


def test_fast_and_reference_paths_give_the_same_eval_curve(runs_dir):
    """Same seed, same curve for the first updates; later, rounding differences compound (see README)."""
    argv = ["--max-steps", "384", "--eval-interval", "50", "--runs-dir"]
    for impl in ("fast", "reference"):
        assert run_script("Spiking_PPO.py", *argv, str(runs_dir / impl), "--snn-impl", impl).returncode == 0
    fast, reference = (
        scalars(only_run_dir(runs_dir / impl))["Spiking-PPO-CartPole-v0/Reward"] for impl in ("fast", "reference")
    )
    assert len(fast) == 7 and fast == reference


def test_stop_at_return_stops_at_the_evaluation_that_reaches_it(runs_dir):
    # evaluations at rollout boundaries (128, 256, ...); any return reaches 1
    result = run_script("PPO.py", "--eval-interval", "128", "--stop-at-return", "1", "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    assert [line.split("|")[0].split() for line in result.stdout.splitlines() if line.startswith("step")] == [
        ["step", "128"]
    ]
    assert "done: 128 steps" in result.stdout


@pytest.mark.parametrize("written", ["1000000", "1_000_000", "1e6", "1E+6", "1000000.0"])
def test_an_integer_flag_takes_a_whole_number_in_any_spelling(written):
    steps = parse_args(Spiking_PPO.SpikingArgs, ["--max-steps", written]).max_steps
    assert steps == 1_000_000 and type(steps) is int


def test_negative_numbers_in_any_float_form_are_values_not_flags():
    # argparse alone takes "-1e3" for a flag and fails with "expected one argument"
    assert parse_args(Spiking_PPO.SpikingArgs, ["--stop-at-return", "-1e3"]).stop_at_return == -1000.0
    assert parse_args(Spiking_PPO.SpikingArgs, ["--init-log-std", "-.5"]).init_log_std == -0.5
    assert parse_args(Spiking_PPO.SpikingArgs, ["--init-log-std", "-1.5E-1"]).init_log_std == -0.15
    with pytest.raises(UsageError, match="--stop-at-return must be finite, got -inf"):
        parse_args(Spiking_PPO.SpikingArgs, ["--stop-at-return", "-inf"])
    with pytest.raises(UsageError, match="expected one argument"):  # a flag is still a flag
        parse_args(Spiking_PPO.SpikingArgs, ["--stop-at-return", "--quiet"])


def test_a_run_shorter_than_the_eval_interval_says_it_evaluated_nothing(runs_dir):
    result = run_script("PPO.py", "--max-steps", "128", "--eval-interval", "1000", "--runs-dir", str(runs_dir))
    assert result.returncode == 0, result.stderr
    (done,) = [line for line in result.stdout.splitlines() if line.startswith("done: ")]
    assert done.startswith("done: 128 steps in ") and ", no evaluation; run directory " in done


@pytest.mark.parametrize(
    "script, says, not_says",
    [("PPO.py", "ANN actor-critic", "spiking actor-critic"), ("Spiking_PPO.py", "spiking actor-critic", "ANN")],
)
def test_help_describes_the_scripts_own_agent_and_shows_what_path_flags_take(script, says, not_says):
    result = run_script(script, "--help")
    assert result.returncode == 0
    first_lines = " ".join(result.stdout.split("\n\n")[1].split())  # the description, after the usage
    assert says in first_lines and not_says not in first_lines, first_lines
    assert "--resume RUN_DIR" in result.stdout and "--eval-only CHECKPOINT" in result.stdout
    assert ("--T T" in result.stdout) == (script == "Spiking_PPO.py")


@pytest.mark.parametrize(
    "tool, shown",
    [
        ("Spiking_PPO.py", ["--num-envs NUM_ENVS parallel training environments (default: 4)", "(default: tutorial)"]),
        ("compare.py", ["--bootstrap BOOTSTRAP bootstrap resamples for the interval (default: 2000)"]),
        ("bench/throughput.py", ["--env-steps ENV_STEPS environment steps per run (default: 100000)"]),
        ("bench/reproduce.py", ["agents to train (default: PPO Spiking-PPO)"]),  # a list, as it is written
    ],
)
def test_help_shows_each_default_worth_saying(tool, shown):
    text = " ".join(run_process(tool, "--help").stdout.split())
    assert all(line in text for line in shown), text
    assert "(default: None)" not in text and "(default: False)" not in text and "(default: [])" not in text


def adam_steps(checkpoint) -> float:
    return torch.load(checkpoint, weights_only=True)["optimizer"]["state"][0]["step"].item()


@pytest.mark.parametrize("script", ["PPO.py", "Spiking_PPO.py"])
def test_compile_trains_either_agent_and_resumes_compiled(script, runs_dir):
    compiled = run_process(script, *SHORT_RUN, "--compile", "--quiet", "--runs-dir", str(runs_dir))
    assert compiled.returncode == 0 and "done: 384 steps" in compiled.stdout, compiled.stderr
    # the compiled step keeps Adam's state where Adam does: the run resumes, compiled, from its last.pt,
    # and steps on from the saved state (3 updates' Adam steps, then 4 updates')
    run_dir = only_run_dir(runs_dir)
    saved = adam_steps(run_dir / "last.pt")
    resumed = run_process(script, "--resume", str(run_dir), "--max-steps", "512", "--quiet")
    assert resumed.returncode == 0 and "done: 512 steps (resumed at step 384; 128 in " in resumed.stdout, resumed.stderr
    assert saved > 0 and adam_steps(run_dir / "last.pt") == saved * 4 / 3


def test_compile_is_refused_where_it_cannot_run(runs_dir, monkeypatch):
    reference = run_script("Spiking_PPO.py", "--compile", "--snn-impl", "reference", "--runs-dir", str(runs_dir))
    assert reference.returncode == 2 and reference.stderr.strip() == (
        "error: --compile compiles the fast path, and --snn-impl reference calls the neurons step by step: "
        "leave one of them out"
    )
    # nor on resuming a run of the reference path, whose --snn-impl a resume keeps
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir / "reference", "--snn-impl", "reference")
    saved = (run_dir / "last.pt").read_bytes()
    resumed = run_script("Spiking_PPO.py", "--resume", str(run_dir), "--max-steps", "512", "--compile")
    assert resumed.returncode == 2 and resumed.stderr == reference.stderr
    assert (run_dir / "last.pt").read_bytes() == saved
    monkeypatch.setenv("CXX", "no-such-c++-compiler")
    for script in ("PPO.py", "Spiking_PPO.py"):
        no_compiler = run_script(script, "--compile", "--runs-dir", str(runs_dir))
        assert no_compiler.returncode == 2 and len(no_compiler.stderr.strip().splitlines()) == 1
        assert "--compile needs a C++ compiler and there is no no-such-c++-compiler on PATH" in no_compiler.stderr
    assert [p.name for p in runs_dir.iterdir()] == ["reference"]


def test_the_tools_count_flags_are_checked_positive_in_order_and_an_unset_one_is_skipped():
    import argparse

    args = argparse.Namespace(seeds=3, random=None, workers=0, runs=-1)
    check_positive(args, "seeds", "random")
    with pytest.raises(UsageError, match=r"^--workers must be an integer > 0, got 0$"):
        check_positive(args, "seeds", "random", "workers", "runs")


def test_the_readmes_flags_table_has_every_flag_at_its_default():
    """README, "Flags": a row per flag of either script, its default as the dataclass has it (a switch
    "off", an unset number "none" or blank, a word in backticks, a number as any float spelling)."""
    section = (ROOT / "README.md").read_text().split("\n## Flags\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for flags, default in re.findall(r"^\| (`--[^|]*)\|([^|]*)\|", section, re.M):
        for flag in re.findall(r"`(--[A-Za-z-]+)", flags):
            rows[flag] = default.strip()
    fields = {f.name: f.default for cls in (Spiking_PPO.SpikingArgs, PPO.AnnArgs) for f in dataclasses.fields(cls)}
    assert set(rows) == {"--" + name.replace("_", "-") for name in fields}
    for name, default in fields.items():
        written = rows["--" + name.replace("_", "-")]
        if default is None:
            assert written in ("none", ""), name
        elif isinstance(default, bool):
            assert written == ("on" if default else "off"), name
        elif isinstance(default, str):
            assert written == f"`{default}`", name
        else:
            assert float(written) == default, name
