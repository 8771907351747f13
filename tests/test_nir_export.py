"""machinery.nir_export: the actor as a NIR graph that, integrated as NIR defines it, gives the action mean."""

import shutil
import types
from pathlib import Path

import nir
import numpy as np
import pytest
import torch
from helpers import run_script
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.nir_exchange import import_from_nir

import Spiking_PPO
from machinery import cost
from machinery.checkpoints import agent_env, load_agent


def integrate(graph: nir.NIRGraph, x: np.ndarray) -> np.ndarray:
    """NIR's equations, integrated by Euler with the graph's dt for its T steps from rest, the input
    held constant: Affine y = W x + b; IF dv/dt = r I (spike and reset to v_reset at v_threshold);
    LI tau dv/dt = (v_leak - v) + r I. Written from NIR's definitions, not from this project's code."""
    dt, T = float(graph.metadata["dt"]), int(graph.metadata["T"])
    order, node = [], next(name for name, n in graph.nodes.items() if isinstance(n, nir.Input))
    while not isinstance(graph.nodes[node], nir.Output):
        node = next(dst for src, dst in graph.edges if src == node)
        order.append(node)
    state = {name: 0.0 for name in order}
    for _ in range(T):
        signal = x
        for name in order:
            n = graph.nodes[name]
            if isinstance(n, nir.Affine):
                signal = signal @ n.weight.T + n.bias
            elif isinstance(n, nir.IF):
                v = state[name] + dt * n.r * signal
                fired = v >= n.v_threshold
                state[name] = np.where(fired, n.v_reset, v)
                signal = fired.astype(np.float64)
            elif isinstance(n, nir.LIF):  # tau dv/dt = (v_leak - v) + r I, then spike and reset as IF
                v = state[name] + dt / n.tau * ((n.v_leak - state[name]) + n.r * signal)
                fired = v >= n.v_threshold
                state[name] = np.where(fired, n.v_reset, v)
                signal = fired.astype(np.float64)
            elif isinstance(n, nir.LI):
                state[name] = state[name] + dt / n.tau * ((n.v_leak - state[name]) + n.r * signal)
                signal = state[name]
    return signal


@pytest.fixture(
    scope="module", params=[(1, 2.0), (2, 2.0), (1, 8.0)], ids=["1-hidden-layer", "2-hidden-layers", "readout-tau-8"]
)
def exported(request, tmp_path_factory):
    runs = tmp_path_factory.mktemp("nir")
    hidden_layers, readout_tau = request.param
    argv = ["--max-steps", "256", "--eval-interval", "128", "--eval-episodes", "2", "--ppo-epochs", "2", "--quiet"]
    argv += ["--hidden-layers", str(hidden_layers), "--readout-tau", str(readout_tau)]
    assert run_script("Spiking_PPO.py", *argv, "--runs-dir", str(runs)).returncode == 0
    (run_dir,) = runs.iterdir()
    result = run_script("Spiking_PPO.py", "--export-nir", str(run_dir / "best.pt"))
    assert result.returncode == 0, result.stderr
    assert f"written: {run_dir / 'best.nir'}" in result.stdout
    model, _ = load_agent(run_dir / "best.pt", Spiking_PPO.AGENT)
    assert model.actor[-1].tau == readout_tau  # the checkpoint rebuilds the network it was trained with
    return nir.read(str(run_dir / "best.nir")), model


def test_the_graph_is_affine_if_then_affine_li_with_dt_and_t(exported):
    graph, model = exported
    kinds = [type(graph.nodes[dst]).__name__ for _, dst in sorted(graph.edges, key=lambda e: "input" not in e[0])]
    hidden_layers = len(model.actor) // 2 - 1
    assert sorted(kinds) == sorted(["Affine", "IF"] * hidden_layers + ["Affine", "LI", "Output"])
    assert float(graph.metadata["dt"]) > 0 and int(graph.metadata["T"]) == model.T


def test_integrating_nirs_equations_gives_the_checkpoints_action_means(exported):
    graph, model = exported
    x = np.random.default_rng(0).normal(size=(64, 4)) * np.array([1.0, 1.0, 0.2, 1.0])  # CartPole-like
    with torch.no_grad():
        mu = model(torch.as_tensor(x, dtype=torch.float32))[0].loc.numpy()
    np.testing.assert_allclose(integrate(graph, x), mu, atol=1e-4, rtol=1e-4)


def test_the_parts_spikingjelly_maps_round_trip_through_its_importer(exported):
    """Affine -> IF (-> Affine -> IF) -> Affine back into SpikingJelly: over T steps it gives what the
    actor's layers before the readout give (the LI readout, which SpikingJelly does not map, is left out)."""
    graph, model = exported
    readout = next(name for name, n in graph.nodes.items() if isinstance(n, nir.LI))
    output = next(name for name, n in graph.nodes.items() if isinstance(n, nir.Output))
    edges = [(src, output if dst == readout else dst) for src, dst in graph.edges if src != readout]
    nodes = {name: n for name, n in graph.nodes.items() if name != readout}
    imported = import_from_nir(nir.NIRGraph(nodes=nodes, edges=edges), dt=float(graph.metadata["dt"]))
    x = torch.randn(16, 4) * 2
    state, imported_sum, actor_sum = None, 0, 0
    with torch.no_grad():
        for _ in range(model.T):
            out, state = imported(x, state)
            imported_sum = imported_sum + out
            actor_sum = actor_sum + model.actor[:-1](x)  # stateful: its IF neurons step on
        functional.reset_net(model)
    torch.testing.assert_close(imported_sum, actor_sum, atol=1e-4, rtol=1e-4)


def test_export_of_a_missing_or_ann_checkpoint_is_one_line_exit_2(tmp_path):
    result = run_script("Spiking_PPO.py", "--export-nir", str(tmp_path / "none.pt"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1 and "no such file" in result.stderr
    assert run_script("PPO.py", "--export-nir", "x.pt").returncode == 2  # the ANN has nothing to export


def test_export_of_a_soft_reset_actor_is_one_line_exit_2_and_writes_nothing(tmp_path):
    """NIR's IF resets to v_reset: a --soft-reset actor has no NIR graph that computes it."""
    argv = ["--soft-reset", "--max-steps", "64", "--eval-interval", "64", "--eval-episodes", "2", "--quiet"]
    assert run_script("Spiking_PPO.py", *argv, "--ppo-epochs", "1", "--runs-dir", str(tmp_path)).returncode == 0
    (run_dir,) = tmp_path.iterdir()
    result = run_script("Spiking_PPO.py", "--export-nir", str(run_dir / "best.pt"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "--soft-reset" in result.stderr and not (run_dir / "best.nir").exists()


def test_an_export_replaces_an_earlier_export_only_never_the_checkpoint_or_another_file(tmp_path):
    argv = ["--max-steps", "64", "--eval-interval", "64", "--eval-episodes", "2", "--ppo-epochs", "1", "--quiet"]
    assert run_script("Spiking_PPO.py", *argv, "--runs-dir", str(tmp_path / "runs")).returncode == 0
    (run_dir,) = (tmp_path / "runs").iterdir()
    for _ in range(2):  # exported again: the new graph replaces the old
        assert run_script("Spiking_PPO.py", "--export-nir", str(run_dir / "best.pt")).returncode == 0
    assert nir.read(str(run_dir / "best.nir")).nodes
    named_nir, notes = tmp_path / "model.nir", tmp_path / "notes.nir"  # its export is model.nir itself
    shutil.copy(run_dir / "best.pt", named_nir)
    shutil.copy(run_dir / "best.pt", tmp_path / "notes.pt")
    notes.write_text("my notes\n")
    for checkpoint, out in [(named_nir, named_nir), (tmp_path / "notes.pt", notes)]:
        before = out.read_bytes()
        result = run_script("Spiking_PPO.py", "--export-nir", str(checkpoint))
        assert result.returncode == 2 and result.stdout == "", result.stdout
        assert result.stderr.strip() == (
            f"error: --export-nir {checkpoint}: {out} exists and is not a NIR graph (an HDF5 file); rename the "
            "checkpoint, or move that file away"
        )
        assert out.read_bytes() == before


def changed_network_run(monkeypatch, tmp_path, hidden_neuron) -> Path:
    """A short run of a network whose branch() puts `hidden_neuron(v_reset)` where the tutorial has IF
    neurons, trained step by step; its run directory."""
    monkeypatch.setattr(Spiking_PPO, "neuron", types.SimpleNamespace(IFNode=hidden_neuron))
    argv = ["--snn-impl", "reference", "--max-steps", "64", "--eval-interval", "64", "--eval-episodes", "2"]
    assert (
        run_script("Spiking_PPO.py", *argv, "--ppo-epochs", "1", "--quiet", "--runs-dir", str(tmp_path)).returncode == 0
    )
    (run_dir,) = tmp_path.iterdir()
    return run_dir


def test_a_network_of_lif_neurons_exports_as_nir_lif_and_integrates_to_its_action_means(monkeypatch, tmp_path):
    run_dir = changed_network_run(monkeypatch, tmp_path, lambda v_reset: neuron.LIFNode(tau=2.0, v_reset=v_reset))
    assert run_script("Spiking_PPO.py", "--export-nir", str(run_dir / "best.pt")).returncode == 0
    graph, (model, _) = nir.read(str(run_dir / "best.nir")), load_agent(run_dir / "best.pt", Spiking_PPO.AGENT)
    assert sum(isinstance(node, nir.LIF) for node in graph.nodes.values()) == 1
    x = np.random.default_rng(0).normal(size=(64, 4)) * 4  # strong enough that the LIF neurons fire
    (spikes,) = cost.hidden_spikes(model.actor, model.T, torch.as_tensor(x, dtype=torch.float32))
    assert 0.05 < spikes.mean() < 0.95
    with torch.no_grad():
        mu = model(torch.as_tensor(x, dtype=torch.float32))[0].loc.numpy()
    np.testing.assert_allclose(integrate(graph, x), mu, atol=1e-4, rtol=1e-4)


def test_an_actor_with_a_module_nir_cannot_map_is_one_line_exit_2_and_writes_nothing(monkeypatch, tmp_path):
    run_dir = changed_network_run(monkeypatch, tmp_path, lambda v_reset: torch.nn.ReLU())
    result = run_script("Spiking_PPO.py", "--export-nir", str(run_dir / "best.pt"))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "no mapping for the actor's ReLU" in result.stderr and not (run_dir / "best.nir").exists()


def test_an_actor_trained_on_normalized_observations_says_so_and_gives_the_statistics(tmp_path):
    """--norm-obs: the network saw observations normalized by running statistics and clipped, which
    NIR has no node for; the graph's metadata holds the statistics, and with them NIR's equations give
    the action means of the observations a replay of the checkpoint plays (gymnasium's wrappers)."""
    argv = ["--env-id", "Pendulum-v1", "--norm-obs", "--obs-clip", "1.5", "--max-steps", "256"]
    argv += ["--eval-interval", "128", "--eval-episodes", "2", "--ppo-epochs", "2", "--quiet"]
    assert run_script("Spiking_PPO.py", *argv, "--runs-dir", str(tmp_path)).returncode == 0
    (run_dir,) = tmp_path.iterdir()
    result = run_script("Spiking_PPO.py", "--export-nir", str(run_dir / "best.pt"))
    assert result.returncode == 0 and "its input: the observation normalized as in training" in result.stdout
    graph, (model, ckpt) = nir.read(str(run_dir / "best.nir")), load_agent(run_dir / "best.pt", Spiking_PPO.AGENT)
    env, rng = agent_env(ckpt), np.random.default_rng(0)
    seen, raw = [env.reset(seed=0)[0]], [env.unwrapped._get_obs()]
    for _ in range(63):
        seen.append(env.step(rng.uniform(-2, 2, size=1))[0])
        raw.append(env.unwrapped._get_obs())
    m = graph.metadata
    normalized = np.clip(
        (np.array(raw) - m["obs_mean"]) / np.sqrt(m["obs_var"] + m["obs_epsilon"]), -m["obs_clip"], m["obs_clip"]
    )
    assert m["obs_clip"] == 1.5 and (np.abs(normalized) == 1.5).any()  # the clip is in play
    with torch.no_grad():
        mu = model(torch.as_tensor(np.array(seen), dtype=torch.float32))[0].loc.numpy()
    np.testing.assert_allclose(integrate(graph, normalized), mu, atol=1e-4, rtol=1e-4)


def test_an_actor_trained_on_the_observations_as_they_come_says_so(exported):
    graph, _ = exported
    assert graph.metadata["input"] == "the observation" and "obs_mean" not in graph.metadata
