"""The memory estimate behind the refusals of machinery/resources.py (the CLI's refusals are in
test_robustness.py): it counts what the networks the scripts build actually hold."""

import dataclasses
import re

import pytest

import PPO
import Spiking_PPO
from machinery import resources
from machinery.cli import UsageError

WEIGHTS = "--hidden-size x --hidden-layers (weights, gradients, Adam)"


@pytest.mark.parametrize("agent", [PPO.AGENT, Spiking_PPO.AGENT], ids=lambda a: a.name)
@pytest.mark.parametrize("hidden_size, hidden_layers", [(64, 1), (256, 1), (64, 2), (256, 3)])
def test_the_weights_estimate_is_within_a_small_factor_of_the_parameters_built(agent, hidden_size, hidden_layers):
    args = dataclasses.replace(agent.args_cls(), hidden_size=hidden_size, hidden_layers=hidden_layers)
    model = agent.build(17, 6, args)
    # weights, their gradients and Adam's two moments: four float32 copies of every parameter
    held = 4 * 4 * sum(p.numel() for p in model.parameters())
    assert held / 2 <= resources.estimate_bytes(args, 17, 6)[WEIGHTS] <= 2 * held


def test_a_deep_wide_network_is_refused_naming_its_layers(monkeypatch):
    monkeypatch.setattr(resources, "available_memory", lambda: 24 << 30)
    shallow = dataclasses.replace(Spiking_PPO.SpikingArgs(), hidden_size=20_000)
    resources.check_machine_can_run(shallow, 17, 6)  # 2 x 20,000 x 25 weights fit easily
    deep = dataclasses.replace(shallow, hidden_layers=8)  # 14 matrices of 20,000^2: 90 GB with Adam
    with pytest.raises(UsageError, match="--hidden-layers") as refusal:
        resources.check_machine_can_run(deep, 17, 6)
    need = float(re.search(r"need about ([\d.]+) GiB", str(refusal.value)).group(1))
    assert 80 <= need <= 200
    assert "more than 80% of the 24.0 GiB available" in str(refusal.value)  # the margin it keeps, said


def test_check_cores_refuses_more_than_the_cores_this_process_may_use(monkeypatch):
    """Threads or runs beyond the cores take turns on them, and the seconds they report are not a core's."""
    monkeypatch.setattr(resources, "usable_cores", lambda: 2)
    resources.check_cores(2, "--workers")
    with pytest.raises(UsageError, match=r"^--workers 3 is more than the 2 cores this process may use$"):
        resources.check_cores(3, "--workers")
