"""machinery.cost: operations, spikes and energy per decision, as SpikingJelly counts them."""

import json

import pytest
import torch
from helpers import run_script
from spikingjelly.activation_based import functional, neuron
from spikingjelly.activation_based.op_counter import estimate_simple_energy

import PPO
from machinery import cost, fast_if
from Spiking_PPO import ActorCritic

PJ_PER_MAC, PJ_PER_AC = 4.6, 0.9  # Horowitz, ISSCC 2014: 45 nm, float32


def spiking_model(seed=0):
    torch.manual_seed(seed)
    return ActorCritic(4, 2, 32, T=16)


def spikes_by_hand(model, x, branch):
    """IF neurons (threshold 1, hard reset to 0) under the constant input of the branch's first Linear."""
    with torch.no_grad():
        h, v, total = getattr(model, branch)[0](x), 0.0, 0.0
        for _ in range(model.T):
            v = v + h
            fired = (v >= 1.0).float()
            total += fired.sum().item()
            v = v * (1 - fired)
    return total


class StepByStepActor(torch.nn.Module):
    """The actor as the tutorial runs it, written out independently of machinery.cost."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        for _ in range(self.model.T):
            self.model.actor(x)
        mu = self.model.actor[3].v
        functional.reset_net(self.model)
        return mu


def test_the_snn_counts_are_spikingjellys_on_a_hand_built_input_and_fit_the_closed_forms():
    model, x = spiking_model(), torch.tensor([[0.5, -1.0, 2.0, 0.25]])
    counted = cost.cost_per_decision(model, x)
    with torch.no_grad():
        direct = estimate_simple_energy(StepByStepActor(model), x)
    actor = counted["actor"]
    assert actor["mac"] == direct.counts["mac"] and actor["ac"] == direct.counts["ac"]
    assert actor["synop"] == direct.counts["synop"]
    assert actor["energy_total_pj"] == pytest.approx(direct.energy_total_pj)
    assert actor["mac"] == 4 * 32 * 16  # the encoder: inputs x hidden x T
    spikes = spikes_by_hand(model, x, "actor")
    assert spikes > 0 and actor["spikes"] == spikes
    assert actor["synop"] == spikes * 2  # each spike reaches the 2 readout neurons
    both = counted["actor_critic"]
    assert both["mac"] == 2 * 4 * 32 * 16
    assert both["spikes"] == spikes + spikes_by_hand(model, x, "critic")


def test_the_spikes_of_other_hidden_neurons_are_counted_and_the_readouts_potentials_are_not():
    torch.manual_seed(0)
    model, x = ActorCritic(4, 2, 32, T=16, impl="reference"), torch.tensor([[0.5, -1.0, 2.0, 0.25]])
    model.actor[1] = neuron.LIFNode(tau=2.0)  # as a reader might change the network
    with torch.no_grad():  # the LIF layer's spikes, stepped by hand: v <- v + (h - v) / tau, reset to 0
        h, v, fired = model.actor[0](x), torch.zeros(1, 32), 0.0
        for _ in range(model.T):
            v = v + (h - v) / 2.0
            fired += float((v >= 1.0).sum())
            v = torch.where(v >= 1.0, 0.0, v)
    counted = cost.cost_per_decision(model, x)
    assert fired > 0 and counted["actor"]["spikes"] == fired
    assert counted["actor_critic"]["spikes"] == fired + spikes_by_hand(model, x, "critic")


@pytest.mark.parametrize("hidden_layers, soft_reset", [(1, False), (3, False), (3, True)])
def test_hidden_spikes_stepped_by_spikingjelly_are_the_fast_paths(hidden_layers, soft_reset):
    torch.manual_seed(0)
    model = ActorCritic(4, 2, 32, T=16, hidden_layers=hidden_layers, soft_reset=soft_reset)
    with torch.no_grad():  # multiples of 1/16: every sum exact, so both compute the same potentials
        for p in model.parameters():
            p.copy_(torch.randint(-8, 9, p.shape) / 16)
    x = torch.randint(-4, 5, (64, 4)) / 4
    for branch in (model.actor, model.critic):
        stepped, fast = cost.hidden_spikes(branch, model.T, x), fast_if.hidden_spikes(branch, model.T, x)
        assert len(stepped) == len(fast) == hidden_layers
        for by_steps, by_kernels in zip(stepped, fast, strict=True):
            assert by_steps.shape == (16, 64, 32) and 0 < by_steps.mean() < 1
            assert torch.equal(by_steps, by_kernels)
        assert branch[-1].v == 0.0  # reset: the next forward starts from rest


def test_the_ann_counts_fit_the_closed_form():
    torch.manual_seed(0)
    model, x = PPO.ActorCritic(4, 2, 32), torch.randn(3, 4)
    counted = cost.cost_per_decision(model, x)
    assert counted["actor"]["mac"] == 4 * 32 + 32 * 2
    assert counted["actor_critic"]["mac"] == 4 * 32 + 32 * 2 + 4 * 32 + 32 * 1
    assert counted["actor"]["spikes"] == 0 and counted["actor"]["synop"] == 0


@pytest.mark.parametrize("build", [spiking_model, lambda: PPO.ActorCritic(4, 2, 32)])
def test_energy_is_the_stated_model_applied_to_the_counts(build):
    counted = cost.cost_per_decision(build(), torch.randn(4, 4) * 2)
    for c in counted.values():
        assert c["energy_pj"] == pytest.approx(c["mac"] * PJ_PER_MAC + c["ac"] * PJ_PER_AC)
        assert c["energy_total_pj"] > c["energy_pj"]  # and memory traffic on top
    assert cost.ENERGY_MODEL["pj_per_mac"] == PJ_PER_MAC and cost.ENERGY_MODEL["pj_per_ac"] == PJ_PER_AC


def test_counting_leaves_the_network_as_it_was():
    model, x = spiking_model(), torch.randn(5, 4)
    before = model(x)[0].loc
    cost.cost_per_decision(model, x[:2])
    assert torch.equal(model(x)[0].loc, before)
    assert all(isinstance(m.v, float) for m in model.modules() if hasattr(m, "v"))  # no state left behind


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("cost")
    made = {}
    for script in ("Spiking_PPO.py", "PPO.py"):
        argv = ["--max-steps", "256", "--eval-interval", "128", "--eval-episodes", "3", "--ppo-epochs", "2"]
        result = run_script(script, *argv, "--quiet", "--runs-dir", str(root / script))
        assert result.returncode == 0, result.stderr
        (run_dir,) = (root / script).iterdir()
        made[script] = run_dir
    return made


@pytest.mark.parametrize("script", ["Spiking_PPO.py", "PPO.py"])
def test_eval_only_report_writes_the_evaluation_and_the_cost_per_decision(script, checkpoints, tmp_path):
    path = tmp_path / "report.json"
    result = run_script(script, "--eval-only", str(checkpoints[script] / "best.pt"), "--report", str(path))
    assert result.returncode == 0, result.stderr
    report = json.loads(path.read_text())
    assert {"episodes", "return_mean", "return_std", "decisions", "cost"} <= report.keys()
    assert report["episodes"] == 10 and report["decisions"] >= 10
    for part in ("actor", "actor_critic"):
        assert set(report["cost"][part]) == {"mac", "ac", "synop", "spikes", "energy_pj", "energy_total_pj"}
    actor = report["cost"]["actor"]
    line = next(line for line in result.stdout.splitlines() if line.startswith("per decision (actor)"))
    assert f"{actor['mac']:.0f} MAC" in line and f"{actor['synop']:.0f} SynOps" in line
    assert (actor["spikes"] > 0) == (script == "Spiking_PPO.py")


@pytest.mark.parametrize(
    "make, message",
    [(lambda d, c: d / "missing.pt", "no such file"), (lambda d, c: c["PPO.py"] / "best.pt", "a PPO checkpoint")],
)
def test_a_report_of_a_missing_or_foreign_checkpoint_is_one_line_exit_2(make, message, checkpoints, tmp_path):
    result = run_script("Spiking_PPO.py", "--eval-only", str(make(tmp_path, checkpoints)), "--report", "r.json")
    assert result.returncode == 2 and message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_report_without_eval_only_is_refused(tmp_path):
    result = run_script("Spiking_PPO.py", "--report", str(tmp_path / "r.json"))
    assert result.returncode == 2 and "--report" in result.stderr and "--eval-only" in result.stderr


def test_counting_inside_inference_mode_counts_the_same(monkeypatch):
    """Training evaluates under torch.inference_mode, where SpikingJelly's counters see no matmul."""
    model, x = spiking_model(), torch.randn(3, 4)
    outside = cost.count(model, x, with_critic=False)
    with torch.inference_mode():
        inside = cost.count(model, x, with_critic=False)
    assert inside == outside and inside["mac"] == 4 * 32 * 16
