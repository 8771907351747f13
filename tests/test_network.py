import math

import pytest
import torch
from spikingjelly.activation_based import functional

import PPO
import Spiking_PPO
from Spiking_PPO import ActorCritic, NonSpikingLIFNode

SEED_STATE_DICT_KEYS = {
    "critic.0.weight",
    "critic.0.bias",
    "critic.2.weight",
    "critic.2.bias",
    "actor.0.weight",
    "actor.0.bias",
    "actor.2.weight",
    "actor.2.bias",
    "log_std",
}


def test_non_spiking_lif_never_fires_and_matches_the_closed_form_of_the_charge_equation():
    tau, xs = 2.0, [3.0, -1.0, 5.0, 0.5, 4.0]
    node = NonSpikingLIFNode(tau=tau)
    outputs = [node(torch.tensor([x])).item() for x in xs]
    # v_t = v_{t-1} + (x_t - v_{t-1}) / tau from v_0 = 0, so v_T = sum_t (1/tau) (1 - 1/tau)^(T-t) x_t.
    expected = [sum((1 / tau) * (1 - 1 / tau) ** (t - s) * xs[s] for s in range(t + 1)) for t in range(len(xs))]
    assert outputs == pytest.approx(expected)
    assert max(outputs) > node.v_threshold  # well above threshold, and still no reset
    functional.reset_net(node)
    assert node(torch.tensor([2.0])).item() == pytest.approx(1.0)


@pytest.mark.parametrize("impl", ["fast", "reference"])
@pytest.mark.parametrize("batch", [1, 7])
def test_actor_critic_output_shapes(impl, batch):
    model = ActorCritic(4, 3, 16, T=8, impl=impl)
    dist, value = model(torch.randn(batch, 4))
    assert dist.loc.shape == dist.scale.shape == (batch, 3)
    assert value.shape == (batch, 1)
    assert dist.sample().shape == (batch, 3)


@pytest.mark.parametrize("impl", ["fast", "reference"])
def test_two_calls_on_the_same_input_give_the_same_output(impl):
    torch.manual_seed(0)
    model = ActorCritic(4, 2, 32, impl=impl)
    x = torch.randn(5, 4) * 3
    dist1, value1 = model(x)
    dist2, value2 = model(x)
    assert torch.equal(dist1.loc, dist2.loc) and torch.equal(value1, value2)
    assert all(isinstance(m.v, float) for m in model.modules() if hasattr(m, "v")), "state left behind"


def test_state_dict_keeps_the_tutorials_layout_and_loads_into_a_fresh_model(tmp_path):
    torch.manual_seed(0)
    model = ActorCritic(4, 2, 32)
    assert set(model.state_dict()) == SEED_STATE_DICT_KEYS
    torch.save(model.state_dict(), tmp_path / "model.pt")
    fresh = ActorCritic(4, 2, 32)
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    x = torch.randn(3, 4)
    assert torch.equal(model(x)[0].loc, fresh(x)[0].loc)


@pytest.mark.parametrize("agent", [Spiking_PPO.AGENT, PPO.AGENT])
def test_init_log_std_sets_the_policys_first_standard_deviation(agent):
    default = agent.build(4, 2, agent.args_cls())(torch.zeros(3, 4))[0]
    narrow = agent.build(4, 2, agent.args_cls(init_log_std=-1.0))(torch.zeros(3, 4))[0]
    assert torch.equal(default.scale, torch.ones(3, 2))  # the tutorial's: std 1
    torch.testing.assert_close(narrow.scale, torch.full((3, 2), math.exp(-1.0)))


def test_the_ann_s_hidden_units_are_relu_by_default_and_tanh_with_activation_tanh():
    """Each branch by hand: Linear, nonlinearity, Linear, nonlinearity, Linear, with the model's weights."""
    torch.manual_seed(0)
    x = torch.randn(6, 5) * 3
    for activation, f in (("relu", torch.relu), ("tanh", torch.tanh)):
        args = PPO.AnnArgs(hidden_layers=2, hidden_size=8, activation=activation)
        model = PPO.AGENT.build(5, 2, args)
        dist, value = model(x)
        for out, branch in ((dist.loc, model.actor), (value, model.critic)):
            h = x
            for linear in (branch[0], branch[2]):
                h = f(h @ linear.weight.T + linear.bias)
            torch.testing.assert_close(out, h @ branch[4].weight.T + branch[4].bias)


@pytest.mark.parametrize("agent", [Spiking_PPO.AGENT, PPO.AGENT])
def test_act_samples_the_policy_as_torch_normal_does_bit_for_bit(agent):
    """The rollout's decision (Spiking_PPO.act) draws the noise itself so that --compile can fuse the
    rest; without --compile it must be the sample torch.normal(mean, std) takes from the same generator."""
    torch.manual_seed(0)
    model = agent.build(4, 3, agent.args_cls(init_log_std=-0.5))
    obs = torch.randn(5, 4)
    with torch.inference_mode():
        noise = torch.randn(5, 3, generator=torch.Generator().manual_seed(7))
        action, log_prob, value = Spiking_PPO.act(model, obs, noise)
        dist, expected_value = model(obs)
        expected = torch.normal(dist.loc, dist.scale, generator=torch.Generator().manual_seed(7))
    assert torch.equal(action, expected)
    assert torch.equal(log_prob, dist.log_prob(expected)) and torch.equal(value, expected_value)
    assert not torch.equal(action, dist.loc)  # the noise was used
