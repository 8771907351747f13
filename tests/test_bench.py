"""bench/reproduce.py: the budgets it trains for and the results file it keeps; bench/breakdown.py: what it times;
the README's results: the tables these scripts write from the results committed beside them."""

import json
import os
import shutil
import signal
import subprocess
import sys
from multiprocessing import Pool

import numpy as np
import pytest
import torch
from helpers import ROOT, short_run

sys.path.insert(0, str(ROOT / "bench"))
import reproduce  # noqa: E402


def test_a_task_budget_in_environment_steps_becomes_rollout_steps_of_the_presets_envs():
    args = reproduce.parse_cli([])
    cartpole = reproduce.command(args, "CartPole-v1", "PPO", 2)  # CleanRL ppo.py: 4 envs
    cheetah = reproduce.command(args, "HalfCheetah-v5", "Spiking-PPO", 1)  # ppo_continuous_action.py: 1 env
    assert cartpole[cartpole.index("--max-steps") + 1] == str(500_000 // 4)
    assert cheetah[cheetah.index("--max-steps") + 1] == str(1_000_000)
    assert cartpole[cartpole.index("--seed") + 1] == "2" and "--preset" in cartpole


def test_flags_of_one_agent_alone_pass_through_to_its_runs():
    args = reproduce.parse_cli(["--agents", "Spiking-PPO", "--", "--preset", "cleanrl", "--T", "8", "--num-envs", "2"])
    run = reproduce.command(args, "HalfCheetah-v5", "Spiking-PPO", 1)
    assert run[run.index("--T") + 1] == "8"
    assert run[run.index("--max-steps") + 1] == str(1_000_000 // 2)  # --num-envs overrides the preset's 1
    args = reproduce.parse_cli(["--agents", "PPO", "--", "--preset", "cleanrl", "--activation", "tanh"])
    run = reproduce.command(args, "Hopper-v5", "PPO", 1)
    assert run[run.index("--activation") + 1] == "tanh" and run[run.index("--max-steps") + 1] == str(1_000_000)


def test_a_run_given_a_flag_its_agent_lacks_fails_alone_in_one_line_and_the_call_exits_1(tmp_path, capsys):
    argv = ["--tasks", "CartPole-v1", "--agents", "PPO", "--seeds", "1", "--json", str(tmp_path / "r.json")]
    assert reproduce.main([*argv, "--runs-dir", str(tmp_path / "runs"), "--", "--T", "8"]) == 1
    failed, summary = capsys.readouterr().err.strip().splitlines()
    assert failed.startswith("failed: ") and failed.endswith("unrecognized arguments: --T 8")
    assert summary == "error: 1 run failed (above); the others are recorded"
    assert not (tmp_path / "r.json").exists()


def test_a_ctrl_c_ends_reproduce_in_one_line_saying_the_same_command_resumes(tmp_path, monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(reproduce, "train", interrupted)
    assert reproduce.main(["--tasks", "CartPole-v1", "--json", str(tmp_path / "r.json")]) == 130
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "stopped by SIGINT; the same command resumes the stopped runs and skips the recorded ones"


def test_seeds_split_between_invocations_train_each_run_asked_for_once():
    args = reproduce.parse_cli(["--tasks", "Hopper-v5", "--agents", "Spiking-PPO", "--seeds", "3", "--from-seed", "2"])
    other = {"name": "other", "task": "Hopper-v5", "agent": "Spiking-PPO", "seed": 3}
    done = {"name": "cleanrl", "task": "Hopper-v5", "agent": "Spiking-PPO", "seed": 2}
    assert reproduce.jobs_to_run(args, [other]) == [("Hopper-v5", "Spiking-PPO", 2), ("Hopper-v5", "Spiking-PPO", 3)]
    assert reproduce.jobs_to_run(args, [other, done]) == [("Hopper-v5", "Spiking-PPO", 3)]
    with pytest.raises(reproduce.UsageError, match="--from-seed must be in 1..--seeds"):
        reproduce.parse_cli(["--seeds", "3", "--from-seed", "4"])
    twice = reproduce.parse_cli(["--tasks", "Hopper-v5", "Hopper-v5", "--agents", "PPO", "PPO", "--seeds", "1"])
    assert reproduce.jobs_to_run(twice, []) == [("Hopper-v5", "PPO", 1)]  # a task or agent named twice: one run


def add(args):
    reproduce.add_record(*args)


def test_a_second_call_resumes_the_run_a_signal_interrupted_and_records_one_it_finished(tmp_path, monkeypatch):
    monkeypatch.setitem(reproduce.TASKS, "CartPole-v1", {"env_steps": 4 * 384, "cleanrl": None})  # 384 rollout steps
    monkeypatch.setattr(reproduce, "EVALUATIONS", 6)  # one every 64 steps
    path, runs = tmp_path / "results.json", tmp_path / "runs"
    argv = ["--tasks", "CartPole-v1", "--agents", "PPO", "--seeds", "1", "--json", str(path), "--runs-dir", str(runs)]
    args = reproduce.parse_cli([*argv, "--", "--ppo-epochs", "2", "--eval-episodes", "2"])
    cmd = reproduce.command(args, "CartPole-v1", "PPO", 1)
    first = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert first.stdout.readline().startswith("step"), first.stderr.read()  # a checkpoint is written
    first.send_signal(signal.SIGTERM)
    first.communicate(timeout=60)
    (run_dir,) = runs.iterdir()
    stopped_at = torch.load(run_dir / "last.pt", weights_only=True)["step"]
    assert 0 < stopped_at < 384
    reproduce.train(args)
    (record,) = json.loads(path.read_text())["runs"]
    assert list(runs.glob("CartPole-v1__*")) == [run_dir] and record["resumed_from_step"] == stopped_at
    assert record["curve"][-1][0] == 384 and record["command"] == " ".join(cmd[1:])
    path.unlink()  # finished, not recorded: recorded as it is, without training again
    reproduce.train(args)
    (again,) = json.loads(path.read_text())["runs"]
    assert "resumed_from_step" not in again and again["curve"] == record["curve"]


def test_runs_finished_by_several_invocations_at_once_are_all_kept(tmp_path):
    path = tmp_path / "results.json"
    with Pool(4) as pool:
        pool.map(add, [(path, {"seed": i}) for i in range(24)])
    assert sorted(r["seed"] for r in json.loads(path.read_text())["runs"]) == list(range(24))


def test_the_snn_share_of_the_ann_is_below_100_percent_when_the_snn_does_worse():
    assert reproduce.share_of_ann(450.0, 500.0) == "90.0%"
    assert reproduce.share_of_ann(449.5, 500.0) == "89.9%"  # just short of a 90% goal is not shown as 90%
    assert reproduce.share_of_ann(-200.0, -100.0) == "50.0%"  # twice the ANN's cost
    assert reproduce.share_of_ann(-100.0, -200.0) == "200.0%"
    assert reproduce.share_of_ann(-10.0, 500.0) == "-"


def run(name, agent, seed, final):
    return {"name": name, "task": "Acrobot-v1", "agent": agent, "seed": seed, "final": final}


def test_each_agents_best_configuration_is_the_one_with_the_highest_mean_return():
    runs = [run("cleanrl", "PPO", 1, -80.0), run("cleanrl", "PPO", 2, -90.0), run("tutorial", "PPO", 1, -95.0)]
    runs += [run("cleanrl", "Spiking-PPO", 1, -500.0), run("tutorial", "Spiking-PPO", 1, -60.0)]
    runs += [run("tutorial", "Spiking-PPO", 2, -140.0)]
    assert reproduce.best_configuration(runs, "Acrobot-v1", "Spiking-PPO") == ("tutorial", [-60.0, -140.0])
    assert reproduce.best_configuration(runs, "CartPole-v1", "PPO") is None
    row = reproduce.best_table(runs, ["Acrobot-v1"]).splitlines()[2]
    # ANN cleanrl: mean -85, sample std 7.1; SNN tutorial: mean -100, std 56.6; share -85 / -100;
    # apart: -15 / sqrt(56.57^2 / 2 + 7.07^2 / 2) = -15 / sqrt(1625) = -0.37
    assert row == "| Acrobot-v1 | cleanrl: -85.0 ± 7.1 (2) | tutorial: -100.0 ± 56.6 (2) | 85.0% | -0.4 |"


def test_a_configuration_on_fewer_than_3_seeds_is_not_the_best_where_another_has_3():
    runs = [run("cleanrl", "PPO", seed, final) for seed, final in [(1, -90.0), (2, -100.0), (3, -110.0)]]
    runs += [run("stopped-lead", "PPO", seed, final) for seed, final in [(1, -70.0), (2, -80.0)]]
    assert reproduce.best_configuration(runs, "Acrobot-v1", "PPO") == ("cleanrl", [-90.0, -100.0, -110.0])
    runs.append(run("stopped-lead", "PPO", 3, -120.0))  # mean -90, above cleanrl's -100 on 3 seeds
    assert reproduce.best_configuration(runs, "Acrobot-v1", "PPO") == ("stopped-lead", [-70.0, -80.0, -120.0])


def test_a_configuration_run_again_at_a_later_commit_is_not_a_candidate_for_the_best():
    runs = [run("cleanrl", "PPO", seed, final) for seed, final in [(1, -90.0), (2, -100.0), (3, -110.0)]]
    runs += [run("cleanrl-at-2abbc5b", "PPO", seed, final) for seed, final in [(1, -70.0), (2, -80.0), (3, -90.0)]]
    runs += [run("tutorial-at-best", "PPO", seed, -95.0) for seed in (1, 2, 3)]  # no commit: a configuration
    assert reproduce.best_configuration(runs, "Acrobot-v1", "PPO") == ("tutorial-at-best", [-95.0] * 3)
    runs = [r for r in runs if r["name"] != "tutorial-at-best"]
    assert reproduce.best_configuration(runs, "Acrobot-v1", "PPO") == ("cleanrl", [-90.0, -100.0, -110.0])


def test_a_configuration_run_again_is_set_beside_its_recorded_runs_of_the_same_seeds():
    runs = [run("cleanrl", "PPO", 1, -90.0), run("cleanrl", "PPO", 2, -100.0)]
    runs += [run("cleanrl", "Spiking-PPO", seed, final) for seed, final in [(1, -100.0), (2, -110.0), (3, -150.0)]]
    assert reproduce.rerun_table(runs, ["Acrobot-v1"]) == ""  # nothing run again: no table
    runs += [run("cleanrl-at-abc1234", "Spiking-PPO", seed, final) for seed, final in [(1, -95.0), (2, -105.0)]]
    rows = reproduce.rerun_table(runs, ["Acrobot-v1"]).splitlines()
    # recorded seeds 1 and 2 alone: -105 ± 7.1; again -100 ± 7.1; apart 5 / sqrt(50 / 2 + 50 / 2) = 0.71;
    # the ANN's cleanrl -95: -95 / -105 and -95 / -100
    cleanrl = "| Acrobot-v1 | cleanrl-at-abc1234 | Spiking-PPO | -105.0 ± 7.1 (2) | -100.0 ± 7.1 (2) | 0.7 |"
    assert rows[2] == cleanrl + " 90.5%, 95.0% | 90.5%, 95.0% |"  # cleanrl: the ANN's configuration and its best
    assert rows[3] == ""  # the ANN was not run again: no row of it
    runs += [run("tutorial", "Spiking-PPO", seed, -80.0) for seed in (1, 2)]
    runs += [run("tutorial-at-abc1234", "Spiking-PPO", seed, -90.0) for seed in (1, 2)]
    rows = reproduce.rerun_table(runs, ["Acrobot-v1"]).splitlines()
    # no ANN run of tutorial: beside the ANN's best alone, cleanrl; means apart without any spread: -inf
    tutorial = "| Acrobot-v1 | tutorial-at-abc1234 | Spiking-PPO | -80.0 ± 0.0 (2) | -90.0 ± 0.0 (2) | -inf |"
    assert rows[3] == tutorial + " - | 118.8%, 105.6% |"


def test_plot_writes_the_figure_and_tables_into_a_directory_it_creates(tmp_path, monkeypatch):
    import matplotlib.axes

    runs = [
        run("cleanrl", agent, seed, final)
        for agent, seed, final in [("PPO", 1, -90.0), ("Spiking-PPO", 1, -120.0), ("Spiking-PPO", 2, -100.0)]
    ]
    runs.append(run("tutorial", "Spiking-PPO", 1, -80.0))
    for r in runs:
        r["curve"] = [[1000, 5.0, -500.0], [2000, 9.0, r["final"]]]  # step, seconds, eval return
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": runs}))
    titles = []
    monkeypatch.setattr(matplotlib.axes.Axes, "set_title", lambda ax, title, **kw: titles.append(title))
    out = tmp_path / "new" / "figure"
    assert reproduce.main(["--plot", "--json", str(results), "--tasks", "Acrobot-v1", "--out", str(out)]) == 0
    assert (tmp_path / "new" / "figure.svg").exists() and (tmp_path / "new" / "figure.png").exists()
    assert titles == ["Acrobot-v1 (seeds: PPO 1, Spiking-PPO 2)"]  # the drawn configuration's seeds, per agent
    drawn, best, every = (tmp_path / "new" / "figure.md").read_text().split("\n\n| task")
    # share: ANN / SNN for negative returns, -90 / -110
    cleanrl_row = "| Acrobot-v1 | cleanrl | -86.36 ± 1.32 (Acrobot-v1) | -90.0 (1) | -110.0 ± 14.1 (2) | 81.8% |"
    assert cleanrl_row in drawn and "tutorial" not in drawn  # the figure's table: its configuration alone
    assert "| Acrobot-v1 | cleanrl: -90.0 (1) | cleanrl: -110.0 ± 14.1 (2) | 81.8% |" in best  # 2 seeds beat 1
    tutorial_row = "| Acrobot-v1 | tutorial | -86.36 ± 1.32 (Acrobot-v1) | - | -80.0 (1) | - |"
    assert cleanrl_row in every and tutorial_row in every


def test_the_readme_shows_the_tables_the_scripts_write_from_the_committed_results(tmp_path):
    """A run added to bench/results-reproduce.json, a new throughput measurement or a new sweep summary
    fails this until the README and docs/results.md show the tables drawn from it (`bench/reproduce.py
    --plot --out docs/reproduce`, `bench/throughput.py`'s printed table, sweep.py's summary.md), and so
    does a new comparison in docs/ (compare.py's comparison.md), bench/cost.json, bench/cost-reproduce.json
    or benchmark.py JSON."""
    import benchmark
    import cost_table
    import throughput

    readme, record = (ROOT / "README.md").read_text(), (ROOT / "docs" / "results.md").read_text()
    assert reproduce.main(["--plot", "--out", str(tmp_path / "reproduce")]) == 0
    drawn, best, every, reruns = (tmp_path / "reproduce.md").read_text().split("\n\n| task")
    assert drawn + "\n\n| task" + best.rstrip() in readme  # the figure's configuration, then the best ones
    assert "| task" + every.rstrip() + "\n\n| task" + best.rstrip() in record  # every configuration, then the best
    assert "| task" + reruns.rstrip() in record  # the configurations run again at a later commit
    measured = json.loads((ROOT / "bench" / "results-throughput.json").read_text())
    assert throughput.table(measured, ["CartPole-v1", "HalfCheetah-v5"]) in readme
    assert throughput.bound_table(measured, ["CartPole-v1", "HalfCheetah-v5"]) in readme
    assert (ROOT / "bench" / "sweep-t-cartpole.md").read_text() in readme  # sweep.py's summary, as it wrote it
    comparison = (ROOT / "docs" / "comparison.md").read_text().split("\n\n")[0]  # compare.py's table, above its caption
    assert comparison.startswith("| agent |") and comparison in readme
    assert cost_table.table(json.loads((ROOT / "bench" / "cost.json").read_text())) in readme
    assert cost_table.grouped_table(json.loads((ROOT / "bench" / "cost-reproduce.json").read_text())["runs"]) in readme
    speed = {
        name: json.loads((ROOT / "bench" / name).read_text())
        for name in ("results-3e4-steps.json", "results-cost-overhead.json")
    }
    table, ratios = benchmark.report(speed["results-3e4-steps.json"]).split("\n\n")
    assert table in readme and ratios in readme  # the Speed section's table and its ratios, as printed
    assert benchmark.report(speed["results-cost-overhead.json"]).split("\n\n")[0] in readme  # beside --cost-interval 0


def test_the_readmes_results_at_a_glance_are_those_of_its_tables():
    """README, "Results at a glance": each figure is read off a table below it (which the test above
    holds to the committed results), so a new result fails this until the summary follows."""
    readme = (ROOT / "README.md").read_text()
    glance = " ".join(readme.split("\n## Results at a glance\n", 1)[1].split("\n## ", 1)[0].split())

    def rows(header: str) -> list[list[str]]:
        return table_rows(readme.split(header, 1)[1].split("\n\n", 1)[0])

    for header, column in (
        ("| task | configuration | CleanRL PPO", -1),
        ("| task | PPO (ANN): best configuration", -2),
    ):
        shares = sorted((float(cells[column].rstrip("%")), cells[0]) for cells in rows(header))
        (low, low_task), (high, high_task) = shares[0], shares[-1]
        assert f"{low}% to {high}%" in glance or f"{low}% ({low_task}) to {high}% ({high_task})" in glance, header
    cartpole, cheetah = rows("| task | CleanRL (its SPS here")
    for agent, column in (("the ANN twin", 3), ("the spiking agent", 5)):
        ratios = [cells[column].split("(")[1].rstrip("x)") for cells in (cartpole, cheetah)]
        assert f"{agent} ran at {ratios[0]} and {ratios[1]} times" in glance
    spread = glance.split("(the spiking agent's from ", 1)[1].split(" measurements)", 1)[0]  # of every measurement
    (cartpole_range, cheetah_range), times = spread.split(" over ")[0].split(" and from "), spread.split(" over ")[1]
    assert f"spiking agent, measured {times} times, at {cartpole_range} and {cheetah_range}" in " ".join(readme.split())
    actor = {cells[0]: cells for cells in rows("| agent | seeds | eval return | network |") if cells[3] == "actor"}
    spiking, ann = (float(actor[agent][7].split(" ± ")[0]) for agent in ("Spiking-PPO", "PPO"))  # compute, nJ
    energy = spiking / ann
    assert f"about {energy:.0f} times the ANN's compute energy" in glance
    continuous = glance.split("on CartPole-v0, and ", 1)[1].split(" times", 1)[0]  # a range, as the section says it
    assert f"costs {continuous} times the ANN's compute energy per decision on the continuous tasks" in " ".join(
        readme.split()
    )


@pytest.mark.parametrize(
    "plot",
    [
        "--plot --name cleanrl-bootstrap --out docs/reproduce-bootstrap",
        "--plot --name tutorial --out docs/reproduce-tutorial",
        "--plot --name snn-tuned-init-log-std-minus-1 --tasks HalfCheetah-v5 --out docs/reproduce-init-log-std",
        "--plot --json bench/results-episodic.json --out docs/reproduce-episodic",
    ],
)
def test_the_committed_tables_of_the_other_figures_are_those_their_documented_command_draws(plot, tmp_path):
    """docs/results.md gives the command that drew each figure of docs/ and its table: run on the committed
    results, it writes the committed table (a run added to a configuration fails this until it is redrawn)."""
    assert f"python bench/reproduce.py {plot}" in (ROOT / "docs" / "results.md").read_text()
    argv = plot.split()
    committed = ROOT / f"{argv[-1]}.md"
    argv[-1] = str(tmp_path / "figure")
    assert reproduce.main([arg if not arg.startswith("bench/") else str(ROOT / arg) for arg in argv]) == 0
    assert (tmp_path / "figure.md").read_text() == committed.read_text()


def test_breakdown_of_a_short_run_times_parts_within_its_training_loop_and_restores_the_script(tmp_path):
    import breakdown

    import Spiking_PPO
    from machinery import session

    before = (session.training, Spiking_PPO.collect_rollout, Spiking_PPO.update)
    out = tmp_path / "breakdown.json"
    flags = ["--max-steps", "600", "--runs-dir", str(tmp_path / "runs"), "--json", str(out)]
    assert breakdown.main(["PPO", *flags]) == 0
    record = json.loads(out.read_text())
    assert record["rollout_steps"] >= 600
    assert list(record["seconds"]) == list(breakdown.PARTS)
    timed = [record["seconds"][part] for part in breakdown.PARTS[:3]]  # the rest is the loop's time less these
    assert all(s > 0 for s in timed) and sum(timed) <= record["loop_s"] + 0.05  # the loop's own count: 0.1 s steps
    assert (session.training, Spiking_PPO.collect_rollout, Spiking_PPO.update) == before


def test_plot_says_in_one_line_what_it_lacks_and_draws_nothing(tmp_path, capsys):
    runs = [run("cleanrl", "PPO", 1, -90.0), run("tutorial", "Spiking-PPO", 1, -80.0)]  # on Acrobot-v1
    for r in runs:
        r["curve"] = [[1000, 5.0, r["final"]]]
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"runs": runs}))
    for name, task in (("nothing", "Acrobot-v1"), ("tutorial", "CartPole-v1")):  # no such name; not on that task
        argv = ["--plot", "--json", str(results), "--name", name, "--tasks", task, "--out", str(tmp_path / "none")]
        assert reproduce.main(argv) == 2  # a traceback from matplotlib, before: no panel to draw
        assert capsys.readouterr().err == (
            f"error: --name {name}: no runs of it on {task} in {results} (recorded: cleanrl, tutorial)\n"
        )
    missing = tmp_path / "missing.json"
    assert reproduce.main(["--plot", "--json", str(missing), "--out", str(tmp_path / "none")]) == 2
    assert capsys.readouterr().err == (
        f"error: --json {missing}: no such file; train the runs first (the same command without --plot)\n"
    )
    assert not list(tmp_path.glob("none*"))


def test_reproduce_refuses_to_start_while_another_tool_trains_one_of_its_runs(tmp_path, capsys):
    import PPO
    from machinery.presets import resolve
    from machinery.run import claimed

    runs = tmp_path / "runs"
    argv = ["--tasks", "CartPole-v1", "--seeds", "2", "--json", str(tmp_path / "r.json"), "--runs-dir", str(runs)]
    args = reproduce.parse_cli(argv)
    seed_2 = resolve(PPO.AGENT.args_cls, reproduce.command(args, "CartPole-v1", "PPO", 2)[2:])
    with claimed([(PPO.AGENT, seed_2)]):  # as another reproduce.py, of seeds 2 to 3, would hold it
        assert reproduce.main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"error: PPO.py --seed 2 on CartPole-v1 in {runs} is being trained by process {os.getpid()}; wait for it to "
        "end, or stop it"
    )
    assert not list(runs.glob("CartPole-v1__*")) and not (tmp_path / "r.json").exists()


def test_reproduce_refuses_a_json_or_out_path_it_cannot_write_before_it_trains_or_draws(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    runs = tmp_path / "runs"
    argv = ["--tasks", "CartPole-v1", "--seeds", "1", "--runs-dir", str(runs)]
    assert reproduce.main([*argv, "--json", str(tmp_path / "file" / "r.json")]) == 2
    assert reproduce.main(["--plot", "--out", str(tmp_path / "file" / "fig")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [
        f"error: --json {tmp_path / 'file' / 'r.json'}: {tmp_path / 'file'} is a file, not a folder",
        f"error: --out {tmp_path / 'file' / 'fig'}: {tmp_path / 'file'} is a file, not a folder",
    ]
    (tmp_path / "fig.md").mkdir()
    assert reproduce.main(["--plot", "--out", str(tmp_path / "fig")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == f"error: --out {tmp_path / 'fig'}: {tmp_path / 'fig.md'} is a folder; name a file to write"
    assert not runs.exists()


def test_the_other_bench_tools_refuse_bad_input_in_one_line_before_they_run(tmp_path, capsys):
    import benchmark
    import cleanrl_runs
    import cleanrl_scripts
    import cost_table
    import mean_action
    import scalars as scalars_tool

    (tmp_path / "file").write_text("")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "last.pt").write_bytes(b"")
    (tmp_path / "empty").mkdir()
    unreadable = tmp_path / "CartPole-v0__PPO__1__1"  # named as a run, its last.pt no checkpoint
    unreadable.mkdir()
    (unreadable / "last.pt").write_bytes(b"")
    json_path = str(tmp_path / "file" / "out.json")
    folder_taken = f"{tmp_path / 'file'} is a file, not a folder"
    missing = str(tmp_path / "none")
    other = tmp_path / "benchmark.json"  # a JSON of another tool, which mean_action.py and reproduce.py add to
    other.write_text('{"machine": "x"}')
    by_task = tmp_path / "throughput.json"  # runs, but by task: not reproduce.py's list of runs
    by_task.write_text('{"runs": {"CartPole-v1": {}}}')
    expected = {
        (benchmark, ("--steps", "0")): "error: --steps must be an integer > 0, got 0",
        (benchmark, ("--json", json_path)): f"error: --json {json_path}: {folder_taken}",
        (cost_table, ("--runs-dir", missing)): f"error: --runs-dir {missing}: no such directory",
        (cost_table, ("--runs-dir", str(tmp_path / "run"))): f"error: --runs-dir {tmp_path / 'run'}: a run's own",
        (cost_table, ("--runs-dir", str(tmp_path / "file"))): f"error: --runs-dir {tmp_path / 'file'}: no such",
        (cost_table, ("--runs-dir", str(tmp_path / "empty"))): f"error: no CartPole-v0 runs under {tmp_path / 'empty'}",
        (cost_table, ("--runs-dir", str(tmp_path), "--json", json_path)): f"error: --json {json_path}: {folder_taken}",
        (mean_action, (str(tmp_path / "run"), "--json", json_path)): f"error: --json {json_path}: {folder_taken}",
        (mean_action, (str(tmp_path / "run"), "--json", str(other))): f"error: --json {other}: {other} exists and is "
        "JSON without 'runs'; name another file, or move that one away",
        (reproduce, ("--plot", "--json", str(other))): f"error: --json {other}: not a results file of reproduce.py",
        (reproduce, ("--plot", "--json", str(by_task))): f"error: --json {by_task}: not a results file of reproduce.py",
        (reproduce, ("--json", str(other))): f"error: --json {other}: {other} exists and is JSON without 'runs'",
        (cost_table, ()): "error: give --runs-dir DIR (a comparison's runs) or run directories (RUN_DIR ...), one",
        (cost_table, (str(tmp_path / "run"), "--runs-dir", str(tmp_path))): "error: give --runs-dir DIR (a compar",
        (cost_table, (str(tmp_path / "empty"),)): f"error: {tmp_path / 'empty'}: no last.pt there",
        (cost_table, (str(tmp_path / "run"),)): f"error: {tmp_path / 'run'}: not a run directory of the scripts'",
        (cost_table, (str(unreadable),)): f"error: {unreadable / 'last.pt'}: not a readable checkpoint",
        (mean_action, (str(unreadable), "--json", str(tmp_path / "m.json"))): f"error: {unreadable / 'last.pt'}: not a",
        (cost_table, (str(tmp_path / "run"), "--json", json_path)): f"error: --json {json_path}: {folder_taken}",
    }
    checkout = tmp_path / "checkout"
    for script in set(cleanrl_scripts.SCRIPTS.values()):
        (checkout / script).parent.mkdir(parents=True, exist_ok=True)
        (checkout / script).write_text("")
    cleanrl_argv = ("--cleanrl-dir", str(checkout), "--runs-dir", str(tmp_path / "file" / "runs"))
    expected[cleanrl_runs, cleanrl_argv] = f"error: --runs-dir {tmp_path / 'file' / 'runs'}: cannot create"
    run_dir, _ = short_run("PPO.py", tmp_path / "runs")
    window = (str(run_dir), "--tag", "losses/entropy", "--from-step", "10000")
    expected[scalars_tool, window] = "error: no value logged from step 10000 to the end; widen the window"
    for (tool, argv), message in expected.items():
        assert tool.main(list(argv)) == 2, (tool.__name__, argv)
        (line,) = capsys.readouterr().err.strip().splitlines()
        assert line.startswith(message), line


def test_throughput_and_breakdown_refuse_a_json_path_they_cannot_write_before_they_run(tmp_path, capsys):
    import breakdown
    import throughput

    (tmp_path / "file").write_text("")
    json_path = str(tmp_path / "file" / "out.json")
    assert throughput.main(["--env-steps", "64", "--json", json_path]) == 2
    assert breakdown.main(["PPO", "--max-steps", "64", "--json", json_path]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: --json {json_path}: {tmp_path / 'file'} is a file, not a folder"] * 2
    folder = tmp_path / "a-folder.json"  # found after a 16-minute measurement, it would lose it
    folder.mkdir()
    assert throughput.main(["--env-steps", "64", "--json", str(folder)]) == 2
    assert breakdown.main(["PPO", "--max-steps", "64", "--json", str(folder)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == [f"error: --json {folder}: {folder} is a folder; name a file to write"] * 2


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--runs", "0"], "error: --runs must be an integer > 0, got 0"),
        (["--env-steps", "-5"], "error: --env-steps must be an integer > 0, got -5"),
        (["--env-steps", "3"], "error: --env-steps 3: less than one step of CartPole-v1's 4 envs"),
    ],
)
def test_throughput_refuses_counts_it_cannot_run_in_one_line_and_writes_nothing(argv, message, tmp_path, capsys):
    import throughput

    json_path = tmp_path / "out.json"
    assert throughput.main([*argv, "--json", str(json_path)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not json_path.exists()


def test_breakdown_refuses_an_unknown_script_with_exit_2(capsys):
    import breakdown

    assert breakdown.main(["ppo.py"]) == 2
    assert "usage: bench/breakdown.py" in capsys.readouterr().err


def test_cleanrl_scripts_run_unchanged_under_gymnasium_1_with_their_last_sps_taken(tmp_path):
    """A stand-in for a CleanRL checkout: its script uses the gymnasium 0.29 form of TransformObservation
    and prints an SPS line per iteration, as CleanRL's do."""
    import cleanrl_scripts
    import throughput

    script = tmp_path / "checkout" / cleanrl_scripts.SCRIPTS["HalfCheetah-v5"]
    script.parent.mkdir(parents=True)
    script.write_text(
        "import os, sys\nimport gymnasium as gym\n"
        "env = gym.wrappers.TransformObservation(gym.make('Pendulum-v1'), lambda obs: obs)\n"
        "assert env.observation_space == gym.make('Pendulum-v1').observation_space\n"
        "assert __name__ == '__main__' and sys.argv[0] == __file__, (__name__, sys.argv)\n"
        "assert sys.argv[1:] == ['--env-id', 'HalfCheetah-v5', '--total-timesteps', '1000', '--no-cuda'], sys.argv\n"
        "print('SPS:', 10)\nprint('SPS:', 1 if os.environ.get('OMP_NUM_THREADS') == '1' else 2)\n"
    )
    checkout = script.parents[1]
    assert throughput.cleanrl_sps(checkout, "HalfCheetah-v5", 1000, True, str(tmp_path)) == 1
    script.write_text("raise SystemExit('no display')\n")
    with pytest.raises(RuntimeError, match="no display"):
        throughput.cleanrl_sps(checkout, "HalfCheetah-v5", 1000, False, str(tmp_path))


def test_throughput_ratios_are_to_the_faster_of_cleanrl_s_two_thread_settings():
    import throughput

    runs = {"CartPole-v1 PPO": 3000.0, "CartPole-v1 Spiking-PPO": 1000.0}
    runs |= {"CartPole-v1 CleanRL": 500.0, "CartPole-v1 CleanRL, 1 thread": 2000.0}
    results = {"cleanrl_dir": "/c", "runs": {k: {"env_steps_per_s": v} for k, v in runs.items()}}
    row = throughput.table(results, ["CartPole-v1"]).splitlines()[2]
    assert row == "| CartPole-v1 | 500 / 2,000 | 3,000 (1.50x) | - | 1,000 (0.50x) | - |"  # - : --compile not run
    results |= {"cleanrl_dir": None, "issue_cleanrl_sps": {"CartPole-v1": 1500}}
    results["runs"]["CartPole-v1 PPO-compile"] = {"env_steps_per_s": 4500.0}
    assert (
        throughput.table(results, ["CartPole-v1"])
        .splitlines()[2]
        .endswith("| 3,000 (2.00x) | 4,500 (3.00x) | 1,000 (0.67x) | - |")
    )


def test_throughput_bounds_the_spiking_agent_by_the_compiled_anns_loop_plus_its_products_and_neurons():
    import throughput

    runs = {"CartPole-v1 CleanRL": 500.0, "CartPole-v1 CleanRL, 1 thread": 2000.0, "CartPole-v1 PPO-compile": 4000.0}
    results = {"cleanrl_dir": "/c", "runs": {k: {"env_steps_per_s": v} for k, v in runs.items()}}
    results["deeper_products_us_per_env_step"] = {"CartPole-v1": {"Spiking-PPO": 50.0, "PPO": 3.125}}
    results["neurons_us_per_env_step"] = {"CartPole-v1": {"Spiking-PPO": 40.0, "PPO": 6.875}}
    row = throughput.bound_table(results, ["CartPole-v1"]).splitlines()[2]
    # 2x of 2,000 steps/s: 250 us a step; the ANN's 250 us, the 46.875 us the spiking agent's products
    # take beyond the ANN's and the 33.125 us its IF neurons take beyond the ANN's tanh: 330 us a step,
    # 3,030 steps/s, 1.52 times 2,000
    assert row == "| CartPole-v1 | 250.0 us | 250.0 us | 46.9 us | 33.1 us | 1.52x |"
    del results["runs"]["CartPole-v1 PPO-compile"]
    assert throughput.bound_table(results, ["CartPole-v1"]) is None
    assert throughput.bound_table(results | {"cleanrl_dir": None}, ["CartPole-v1"]) is None


@pytest.mark.parametrize("work", ["deeper_products_seconds", "neurons_seconds"])
def test_both_agents_update_work_is_counted_for_every_mini_batch_of_an_update(work, monkeypatch):
    import throughput

    monkeypatch.setattr(throughput.timeit, "repeat", lambda products, number, repeat: [number * 1e-3, number * 2e-3])
    # --preset cleanrl, two hidden layers: CartPole-v1 runs 4 mini-batches x 4 epochs per 4 x 128 env
    # steps, HalfCheetah-v5 32 x 10 per 2048; a millisecond each (the best of the repetitions) per layer
    # after the first for the products, and per layer for the neurons
    layers = {"deeper_products_seconds": 1, "neurons_seconds": 2}[work]
    for task, per_env_step in (("CartPole-v1", 1e-3 * 16 / 512), ("HalfCheetah-v5", 1e-3 * 320 / 2048)):
        seconds = getattr(throughput, work)(task)
        expected = layers * per_env_step
        assert seconds == {"PPO": pytest.approx(expected), "Spiking-PPO": pytest.approx(expected)}


def test_throughput_refuses_a_cleanrl_dir_without_its_scripts_in_one_line(tmp_path, capsys):
    import throughput

    assert throughput.main(["--cleanrl-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no cleanrl/ppo.py there" in err


def test_cleanrl_runs_train_each_task_and_seed_once_with_their_logs_in_the_runs_dir(tmp_path, capsys):
    """A stand-in for CleanRL's ppo_continuous_action.py that writes runs/<run name>/ where it runs, as
    CleanRL's does; one seed of it fails."""
    import cleanrl_runs

    script = tmp_path / "checkout" / "cleanrl" / "ppo_continuous_action.py"
    script.parent.mkdir(parents=True)
    script.write_text(
        "import os, sys\n"
        "assert sys.argv[1] == '--env-id' and sys.argv[3] == '--seed' and sys.argv[5:] == ['--no-cuda'], sys.argv\n"
        "env_id, seed = sys.argv[2], sys.argv[4]\n"
        "if seed == '3': raise SystemExit('seed 3 diverged')\n"
        "os.makedirs(f'runs/{env_id}__ppo_continuous_action__{seed}__0')\n"
        "open(f'runs/{env_id}__ppo_continuous_action__{seed}__0/threads', 'w').write(os.environ['OMP_NUM_THREADS'])\n"
    )
    runs = tmp_path / "runs"
    argv = ["--cleanrl-dir", str(script.parents[1]), "--runs-dir", str(runs), "--seeds", "2"]
    assert cleanrl_runs.main([*argv, "--tasks", "Hopper-v5", "HalfCheetah-v5"]) == 0
    names = ("HalfCheetah-v5__ppo_continuous_action__1__0", "HalfCheetah-v5__ppo_continuous_action__2__0")
    assert sorted(p.name for p in runs.iterdir()) == [*names, *(n.replace("HalfCheetah", "Hopper") for n in names)]
    assert (runs / names[0] / "threads").read_text() == "1"
    capsys.readouterr()
    assert cleanrl_runs.main([*argv, "--tasks", "Hopper-v5", "--seeds", "3", "--from-seed", "3"]) == 1
    assert "failed: Hopper-v5 seed 3: seed 3 diverged" in capsys.readouterr().err


def test_cleanrl_runs_end_a_ctrl_c_in_one_line_with_the_signals_status(tmp_path, monkeypatch, capsys):
    import cleanrl_runs
    import cleanrl_scripts

    script = tmp_path / "checkout" / cleanrl_scripts.SCRIPTS["Hopper-v5"]
    script.parent.mkdir(parents=True)
    script.write_text("")

    def interrupted(args, task, seed):
        raise KeyboardInterrupt  # Ctrl-C, as a run's thread sees it

    monkeypatch.setattr(cleanrl_runs, "train", interrupted)
    argv = ["--cleanrl-dir", str(script.parents[1]), "--runs-dir", str(tmp_path / "runs"), "--tasks", "Hopper-v5"]
    assert cleanrl_runs.main(argv) == 130
    assert capsys.readouterr().err == f"stopped by SIGINT; the runs that finished are in {tmp_path / 'runs'}\n"


def test_cleanrl_runs_refuse_bad_arguments_in_one_line_with_exit_2(tmp_path, capsys):
    import cleanrl_runs

    assert cleanrl_runs.main(["--cleanrl-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no cleanrl/ppo_continuous_action.py there" in err
    assert cleanrl_runs.main(["--cleanrl-dir", str(tmp_path), "--tasks", "CartPole-v1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 'CartPole-v1'" in err


def test_mean_action_groups_runs_by_agent_and_the_arguments_that_differ_within_it():
    import mean_action

    def run(agent, seed, **args):
        return {"agent": agent, "env_id": "E", "args": {"seed": seed, "lr": 1, **args}}

    runs = [run("PPO", 1), run("PPO", 2, runs_dir="elsewhere"), run("SNN", 1, tau=2), run("SNN", 2, tau=2)]
    runs += [run("SNN", 1, tau=16), run("Spiking-PPO", 1, compile=False), run("Spiking-PPO", 2)]  # one saved without it
    grouped = mean_action.groups(runs)
    assert {label: [r["args"]["seed"] for r in members] for label, members in grouped.items()} == {
        "PPO, E": [1, 2],
        "SNN, E, tau=2": [1, 2],
        "SNN, E, tau=16": [1],
        "Spiking-PPO, E": [1, 2],
    }
    twice = [run("PPO", 1) | {"run_dir": "a"}, run("PPO", 1) | {"run_dir": "b"}, run("PPO", 2) | {"run_dir": "c"}]
    with pytest.raises(mean_action.UsageError, match=r"^PPO, E: 2 runs of --seed 1 \(a, b\): a seed counts once"):
        mean_action.groups(twice)


def test_cost_table_of_run_directories_groups_them_and_counts_what_a_hand_count_gives(tmp_path, monkeypatch, capsys):
    """Run directories given by name: each last.pt replayed, the runs grouped by configuration, named
    as a command line gives it (the preset, and the flags given beyond it), the actor's MACs per
    decision those of its Linear layers on float inputs: the ANN's 4 x 32 + 32 x 2, the SNN's first
    layer at each of its T steps (its later ones see spikes)."""
    import cost_table

    snn_1, _ = short_run("Spiking_PPO.py", tmp_path / "a", "--T", "4")
    snn_2, _ = short_run("Spiking_PPO.py", tmp_path / "b", "--T", "4", "--seed", "2")
    ann, _ = short_run("PPO.py", tmp_path / "c")
    out = tmp_path / "cost.json"
    assert cost_table.main([str(snn_1), str(snn_2), str(ann), str(snn_1), "--json", str(out)]) == 0
    runs = json.loads(out.read_text())["runs"]
    assert [r["run_dir"] for r in runs] == [str(snn_1), str(snn_2), str(ann)]  # one named twice is replayed once
    assert [r["report"]["checkpoint"] for r in runs] == [str(d / "last.pt") for d in (snn_1, snn_2, ann)]
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith(("| Spiking-PPO", "| PPO"))]
    short = "--preset tutorial --max-steps 256 --ppo-epochs 2 --eval-interval 64 --eval-episodes 3"  # SHORT's
    assert [row.split(" | ")[:2] for row in rows] == [
        [f"| Spiking-PPO, CartPole-v0: {short} --T 4", "2"],
        [f"| PPO, CartPole-v0: {short}", "1"],
    ]
    assert f" | {4 * 4 * 32} ± 0 | " in rows[0] and f" | {4 * 32 + 32 * 2} | " in rows[1]  # one seed: no spread
    spikes = [r["report"]["cost"]["actor"]["spikes"] for r in runs[:2]]
    assert f" | {np.mean(spikes):.1f} ± {np.std(spikes, ddof=1):.1f} | " in rows[0]

    copy = shutil.copytree(snn_1, tmp_path / "copy" / snn_1.name)  # the same seed twice would count as two
    monkeypatch.setattr(cost_table, "report", lambda *a: pytest.fail("replayed before the runs were checked"))
    assert cost_table.main([str(snn_1), str(copy), "--json", str(tmp_path / "again.json")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    label = f"Spiking-PPO, CartPole-v0: {short} --T 4"
    assert line == f"error: {label}: 2 runs of --seed 1 ({snn_1}, {copy}): a seed counts once; give one of them"
    assert not (tmp_path / "again.json").exists()


def test_mean_action_refuses_a_directory_without_last_pt_in_one_line(tmp_path):
    out = tmp_path / "out.json"
    argv = [sys.executable, str(ROOT / "bench" / "mean_action.py"), str(tmp_path), "--json", str(out)]
    result = subprocess.run(argv, capture_output=True, text=True)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "no last.pt" in result.stderr and not out.exists()


def test_mean_action_replays_only_the_runs_its_json_lacks(tmp_path, monkeypatch, capsys):
    import mean_action

    old, new = tmp_path / "old", tmp_path / "new"
    for run_dir in (old, new):
        run_dir.mkdir()
        (run_dir / "last.pt").write_bytes(b"")
    out = tmp_path / "out.json"
    record = {"agent": "PPO", "env_id": "E", "args": {"seed": 1}, "policy_std": 0.5, "sampled": 1.0, "mean_action": 2.0}
    out.write_text(json.dumps({"runs": [record | {"run_dir": str(old)}]}))
    replayed = []
    seed_2 = record | {"args": {"seed": 2}}
    monkeypatch.setattr(mean_action, "measure", lambda d, n: replayed.append(d) or seed_2 | {"run_dir": str(d)})
    assert mean_action.main([str(old), str(new), "--json", str(out)]) == 0
    assert replayed == [new] and [r["run_dir"] for r in json.loads(out.read_text())["runs"]] == [str(old), str(new)]
    assert "| PPO, E | 2 | 1.0 ± 0.0 | 2.0 ± 0.0 | 0.500 ± 0.000 |" in capsys.readouterr().out


def test_scalars_summarizes_a_window_of_a_logged_scalar_as_numpy_does(tmp_path, capsys):
    import scalars
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    steps, values = np.arange(0, 20_000, 1000), rng.normal(size=20)
    with SummaryWriter(str(tmp_path / "run")) as writer:
        for step, value in zip(steps, values, strict=True):
            writer.add_scalar("losses/approx_kl", value, int(step))
    summary = scalars.summary(scalars.read_scalar(tmp_path / "run", "losses/approx_kl"), 5000, 12_000)
    window = values[(steps >= 5000) & (steps <= 12_000)]
    assert summary["median"] == pytest.approx(np.median(window), rel=1e-6)
    assert (summary["min"], summary["max"]) == pytest.approx((window.min(), window.max()), rel=1e-6)
    assert summary["lowest"] == pytest.approx(values.min(), rel=1e-6)
    assert summary["lowest_at"] == steps[values.argmin()] and summary["last"] == pytest.approx(values[-1], rel=1e-6)
    assert scalars.main([str(tmp_path / "run"), "--tag", "losses/entropy"]) == 2  # a tag the run never logged
    assert "no scalar 'losses/entropy' in its log, whose scalars are losses/approx_kl" in capsys.readouterr().err
    assert scalars.main([str(tmp_path), "--tag", "losses/approx_kl"]) == 2  # the runs' parent, not a run
    assert "no scalars logged there; give a run's own directory" in capsys.readouterr().err


def test_episodic_return_reduces_runs_as_openrlbenchmark_reduces_cleanrls(tmp_path, capsys):
    """Per run the mean of its last 100 training episodes' returns; over the runs their mean and
    numpy's std (ddof 0), computed here by hand from the values written."""
    import episodic_return
    from torch.utils.tensorboard import SummaryWriter

    rng = np.random.default_rng(0)
    logged = {"a": rng.normal(100.0, 10.0, size=150), "b": rng.normal(50.0, 5.0, size=120), "c": np.arange(30.0)}
    logged = {name: returns.astype(np.float32).astype(np.float64) for name, returns in logged.items()}  # as logged
    for name, returns in logged.items():
        with SummaryWriter(str(tmp_path / name)) as writer:
            for step, value in enumerate(returns):
                writer.add_scalar("charts/episodic_return", value, step)
    per_run = [logged["a"][-100:].mean(), logged["b"][-100:].mean(), logged["c"].mean()]
    assert episodic_return.main([str(tmp_path / name) for name in logged]) == 0
    out = capsys.readouterr().out
    assert f"| a | {per_run[0]:.2f} |" in out and f"| c | {per_run[2]:.2f} (only 30 episodes) |" in out
    assert f"Over the 3 runs: {np.mean(per_run):.2f} ± {np.std(per_run):.2f}" in out
    assert episodic_return.main([str(tmp_path / name) for name in (*logged, "a")]) == 0  # a run named twice
    assert f"Over the 3 runs: {np.mean(per_run):.2f}" in capsys.readouterr().out
    assert episodic_return.main([str(tmp_path / "a"), "--last", "0"]) == 2
    assert "--last must be an integer > 0, got 0" in capsys.readouterr().err


def table_rows(markdown: str) -> list[list[str]]:
    """The cells of each row of the Markdown tables in `markdown`, without their headers and rules; a
    first cell "HalfCheetah-v5 (CleanRL: -v4)" is cut to the task's id."""
    lines, rows = [*markdown.splitlines(), ""], []
    for line, below in zip(lines, lines[1:], strict=False):
        if line.startswith("| ") and not below.startswith("|---"):
            task, *cells = (cell.strip() for cell in line.strip("| ").split(" | "))
            rows.append([task.split(" (")[0], *cells])
    return rows


def test_the_cleanrl_measure_tables_show_what_the_scripts_wrote(tmp_path):
    """docs/results.md's tables of the agents measured as CleanRL measures, at `cleanrl` and at each
    agent's best configuration (and the README's summary of them): each training-episode column is
    bench/episodic_return.py's committed output, each evaluation column what `bench/reproduce.py
    --plot` draws from bench/results-episodic.json."""
    section = (ROOT / "docs" / "results.md").read_text().split("## CleanRL's own measure")[1].split("\n## ")[0]
    cleanrl_table, best_table = section.split("**The spiking agent at its best configurations**")
    readme = " ".join((ROOT / "README.md").read_text().split())
    results = ROOT / "bench" / "results-episodic.json"
    assert reproduce.main(["--plot", "--json", str(results), "--out", str(tmp_path / "e")]) == 0
    drawn = (tmp_path / "e.md").read_text().splitlines()
    # (committed output, its tasks, the docs' table, the column of its configuration (None: all
    # `cleanrl`) and of its training episodes (the evaluations' is the next, if any), the agent's
    # column in reproduce.py's tables, None where the docs' table has no evaluations for it)
    outputs = (
        ("episodic-return-cleanrl.md", 4, cleanrl_table, None, 2, 3),
        ("episodic-return-cleanrl-spiking.md", 4, cleanrl_table, None, 4, 4),
        ("episodic-return-best-ann.md", 1, best_table, 1, 4, None),
        ("episodic-return-best-spiking.md", 4, best_table, 2, 5, 4),
    )
    shown = {}  # (output, task) -> its summary
    for output, tasks, table, config_column, column, drawn_column in outputs:
        episodes = (ROOT / "bench" / output).read_text().split("## ")[1:]
        assert len(episodes) == tasks, output
        for block in episodes:
            task, (runs, summary) = block.splitlines()[0], block.split("Over the ")[1].split(" runs: ")
            (cells,) = [cells for cells in table_rows(table) if cells[0] == task]
            training = cells[column]
            assert training == summary.split(" (")[0], (output, task)
            assert f"{training} on {task}" in readme, (output, task)  # its summary
            config = "cleanrl" if config_column is None else block.split("Configuration `")[1].split("`")[0]
            if config_column is not None:
                assert cells[config_column] == config, (output, task)
            shown[output, task] = training
            if drawn_column is not None:
                drawn_row = next(line for line in drawn if line.startswith(f"| {task} | {config} | "))
                assert drawn_row.split(" | ")[drawn_column] == f"{cells[column + 1]} ({runs})", (output, task)
    # where the ANN's best configuration is `cleanrl`, its figure is the first table's
    for cells in table_rows(best_table):
        ann_output = "episodic-return-cleanrl.md" if cells[1] == "cleanrl" else "episodic-return-best-ann.md"
        assert cells[4] == shown[ann_output, cells[0]], cells[0]


def test_the_table_of_cleanrl_s_own_script_shows_what_the_scripts_wrote():
    """docs/results.md's table of CleanRL's own script run here, beside CleanRL's published numbers and
    the ANN with ReLU and with tanh: each measured column is bench/episodic_return.py's committed
    output for its runs ("-" where none were made)."""
    section = (ROOT / "docs" / "results.md").read_text().split("## CleanRL's own script on the -v5 tasks")[1]
    outputs = ("episodic-return-cleanrl-script.md", "episodic-return-cleanrl.md", "episodic-return-tanh.md")
    summaries = {}
    for output in outputs:
        for block in (ROOT / "bench" / output).read_text().split("## ")[1:]:
            summaries[output, block.splitlines()[0]] = block.split(" runs: ")[1].split(" (")[0]
    rows = table_rows(section.split("\n## ")[0])
    assert [cells[0] for cells in rows] == ["Hopper-v5", "HalfCheetah-v5"]
    for task, published, *measured in rows:
        assert published == "{:.2f} ± {:.2f}".format(*reproduce.TASKS[task]["cleanrl"])
        assert measured == [summaries.get((output, task), "-") for output in outputs], task


# each tool stops at once where --workers is refused and does no training either way (reproduce.py
# --plot draws, cleanrl_runs.py finds no CleanRL there), so that a regression fails fast
@pytest.mark.parametrize(
    "tool, argv",
    [("reproduce", ["--plot", "--json", "r.json", "--out", "o"]), ("cleanrl_runs", ["--cleanrl-dir", "."])],
)
def test_the_training_tools_refuse_more_runs_at_once_than_cores(tool, argv, tmp_path, monkeypatch, capsys):
    from machinery import resources

    monkeypatch.setattr(resources, "usable_cores", lambda: 2)
    monkeypatch.chdir(tmp_path)
    assert __import__(tool).main([*argv, "--runs-dir", "runs", "--workers", "3"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == "error: --workers 3 is more than the 2 cores this process may use"


def test_a_replay_that_fails_is_one_line_with_the_scripts_own_error(tmp_path):
    import replays

    missing = tmp_path / "last.pt"
    with pytest.raises(replays.UsageError) as failed:
        replays.report(missing, "PPO", "--eval-episodes", "1")
    assert str(failed.value) == f"{missing}: the replay failed: error: {missing}: no such file"
