import pytest
import torch
from helpers import TOL, change_parameters_every_way

import PPO
import Spiking_PPO
from machinery import fast_ann, fast_if


def ann(obs_dim, actions, hidden_layers=2, activation="relu", seed=0):
    torch.manual_seed(seed)
    model = PPO.AGENT.build(obs_dim, actions, PPO.AnnArgs(hidden_layers=hidden_layers, activation=activation))
    Spiking_PPO.orthogonal_init(model)
    with torch.no_grad():
        model.log_std.copy_(torch.linspace(-1.5, 0.5, actions))  # a std of its own for each dimension
        for linear in (m for m in model.modules() if isinstance(m, torch.nn.Linear)):
            linear.bias.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(linear.out_features))
    return model


def check_decisions(decide, model, obs, noise):
    with torch.inference_mode():
        for ours, acts in zip(decide(model, obs, noise), Spiking_PPO.act(model, obs, noise), strict=True):
            assert ours.shape == acts.shape and ours.dtype == acts.dtype
            torch.testing.assert_close(ours, acts, **TOL)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
@pytest.mark.parametrize("obs_dim, batch, actions", [(17, 1, 6), (4, 4, 2), (13, 3, 1)])
def test_the_policy_step_in_one_kernel_is_act_to_float_rounding(activation, hidden_layers, obs_dim, batch, actions):
    """--compile's policy step of the ANN (`fast_ann.decisions`): the action, its log-probability and
    the value that `Spiking_PPO.act` computes from the same noise (widths that are and are not
    multiples of the kernel's 8 lanes)."""
    model = ann(obs_dim, actions, hidden_layers, activation)
    decide, rng = fast_ann.decisions(model), torch.Generator().manual_seed(hidden_layers)
    for scale in (0.3, 1.0, 4.0):
        obs, noise = torch.randn(batch, obs_dim, generator=rng) * scale, torch.randn(batch, actions, generator=rng)
        check_decisions(decide, model, obs, noise)


def test_the_policy_step_in_one_kernel_follows_the_parameters_wherever_they_change():
    """Its arrays of the parameters, kept between calls, show every change of the parameters, and
    another model's parameters when it is given another model."""
    model, other = ann(5, 2, seed=0), ann(5, 2, seed=1)
    decide, rng = fast_ann.decisions(model), torch.Generator().manual_seed(0)

    def check(net):
        check_decisions(decide, net, torch.randn(3, 5, generator=rng) * 3, torch.randn(3, 2, generator=rng))

    change_parameters_every_way(model, other, PPO.AnnArgs(), check, rng)


def test_the_policy_step_has_one_kernel_only_where_the_kernel_computes_the_network(monkeypatch):
    assert fast_ann.decisions(ann(4, 2)) is not None
    changed = ann(4, 2)
    changed.actor[1] = torch.nn.ELU()  # an activation the kernel does not compute
    assert fast_ann.decisions(changed) is None
    changed = ann(4, 2)
    changed.critic = torch.nn.Sequential(*changed.critic[:2], changed.critic[-1])  # branches of other depths
    changed.critic[-1] = torch.nn.Linear(changed.critic[0].out_features, 1)
    assert fast_ann.decisions(changed) is None
    changed = ann(4, 2)
    changed.actor[2] = torch.nn.Linear(*changed.actor[2].weight.shape[::-1], bias=False)
    assert fast_ann.decisions(changed) is None
    changed = ann(4, 2, activation="tanh")
    changed.critic[1] = torch.nn.ReLU()  # one activation in one branch, another in the other
    assert fast_ann.decisions(changed) is None
    spiking = Spiking_PPO.AGENT.build(4, 2, Spiking_PPO.SpikingArgs(hidden_layers=2))
    assert fast_ann.decisions(spiking) is None and fast_if.decisions(spiking) is not None
    assert fast_ann.decisions(ann(4, 2).double()) is None
    monkeypatch.setattr(fast_if, "NUMBA_ON_CPU", False)  # as on a GPU
    assert fast_ann.decisions(ann(4, 2)) is None
