"""machinery.fast_if through ActorCritic.forward_fast, against the tutorial's step-by-step network:
same function, same gradients."""

import gc
import inspect
import types
import weakref

import pytest
import torch
from helpers import TOL, change_parameters_every_way, fast_and_reference, loss_and_grads, run_script, scalars, short_run
from spikingjelly.activation_based import neuron, surrogate

import PPO
import Spiking_PPO
from machinery import fast_if
from machinery.cli import apply_preset
from machinery.presets import PRESETS
from machinery.speed import Adam
from Spiking_PPO import AGENT, ActorCritic, NonSpikingLIFNode, SpikingArgs, ppo_update


def firing_regimes(spikes_per_step):
    silent = (spikes_per_step == 0).float().mean().item()
    always = (spikes_per_step == 1).float().mean().item()
    return silent, always


@pytest.mark.parametrize("kernel", ["numba", "torch"])  # the CPU kernels, and those other devices run
@pytest.mark.parametrize("batch", [1, 4, 256])
@pytest.mark.parametrize("input_scale", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("T", [16, 5])
def test_outputs_and_gradients_match_the_reference(kernel, batch, input_scale, T, monkeypatch):
    check_against_the_reference(kernel, batch, input_scale, T, 1, monkeypatch)


@pytest.mark.parametrize("kernel", ["numba", "torch"])
@pytest.mark.parametrize("input_scale", [0.3, 4.0])
@pytest.mark.parametrize("T", [16, 5])
def test_deeper_networks_match_the_reference(kernel, input_scale, T, monkeypatch):
    """--hidden-layers 3: two IF layers whose input changes over the T steps (IFSpikes)."""
    check_against_the_reference(kernel, 32, input_scale, T, 3, monkeypatch)


@pytest.mark.parametrize("kernel", ["numba", "torch"])
@pytest.mark.parametrize("hidden_layers", [1, 3])
@pytest.mark.parametrize("input_scale", [0.3, 1.0, 4.0])
def test_soft_reset_matches_the_reference(kernel, hidden_layers, input_scale, monkeypatch):
    """--soft-reset: SpikingJelly's IFNode(v_reset=None), in both kinds of IF layer."""
    check_against_the_reference(kernel, 64, input_scale, 16, hidden_layers, monkeypatch, soft_reset=True)


@pytest.mark.parametrize("soft_reset", [False, True])
def test_a_constant_input_fires_as_often_as_the_reset_allows(soft_reset):
    """Under a constant current h for 16 steps an IF neuron that resets to 0 fires every ceil(1/h)
    steps, floor(16 / ceil(1/h)) times: 8 distinct counts from 0 to 16, and 8 for every h in
    [0.5, 1). One that subtracts the threshold fires floor(16 h) times: every count from 0 to 16.
    The currents are odd multiples of 1/2048, whose sums float32 holds exactly."""
    h = (2 * torch.arange(1200, dtype=torch.float64) + 1) / 2048  # (0, 1.17)
    count = fast_if.if_spike_count(h.float()[:, None], torch.ones(16), 1.0, 4.0, soft_reset)[:, 0]
    if soft_reset:
        expected, counts = torch.floor(16 * h).clamp(max=16), set(range(17))
    else:
        expected, counts = 16 // torch.ceil(1 / h), {0, 1, 2, 3, 4, 5, 8, 16}
    torch.testing.assert_close(count, expected.float(), atol=0, rtol=0)
    assert {int(c) for c in count} == counts


@pytest.mark.parametrize("kernel", ["numba", "torch"])
@pytest.mark.parametrize("soft_reset", [False, True])
def test_the_count_without_gradient_is_the_differentiable_one(kernel, soft_reset, monkeypatch):
    """The rollout's and evaluation's decisions skip the autograd Function: the same counts to the
    bit, with nothing recorded for a gradient."""
    monkeypatch.setattr(fast_if, "NUMBA_ON_CPU", kernel == "numba")
    h = torch.randn(64, 32, generator=torch.Generator().manual_seed(0)) * 2
    w = fast_if.lif_readout_weights(2.0, 16).float()
    with torch.inference_mode():
        plain = fast_if.if_spike_count(h, w, 1.0, 4.0, soft_reset)
    differentiable = fast_if.if_spike_count(h.clone().requires_grad_(), w, 1.0, 4.0, soft_reset)
    assert differentiable.requires_grad and not plain.requires_grad
    assert 0 < plain.mean() < w.sum()  # some neurons fire, not all at every step
    torch.testing.assert_close(plain, differentiable.detach(), atol=0, rtol=0)


def check_against_the_reference(
    kernel, batch, input_scale, T, hidden_layers, monkeypatch, readout_tau=2.0, soft_reset=False
):
    monkeypatch.setattr(fast_if, "NUMBA_ON_CPU", kernel == "numba")
    fast, reference = fast_and_reference(4, 2, 32, T, batch * 100 + T, hidden_layers, readout_tau, soft_reset)
    assert (fast.actor[1].v_reset, reference.critic[1].v_reset) == ((None, None) if soft_reset else (0.0, 0.0))
    assert fast.actor[-1].tau == reference.critic[-1].tau == readout_tau
    g = torch.Generator().manual_seed(batch + T)
    x = torch.randn(batch, 4, generator=g) * input_scale
    action = torch.randn(batch, 2, generator=g)
    target = torch.randn(batch, 1, generator=g)

    dist_f, value_f, grads_f = loss_and_grads(fast, x, action, target)
    dist_r, value_r, grads_r = loss_and_grads(reference, x, action, target)

    torch.testing.assert_close(dist_f.loc, dist_r.loc, **TOL)
    torch.testing.assert_close(dist_f.scale, dist_r.scale, **TOL)
    torch.testing.assert_close(value_f, value_r, **TOL)
    for name in grads_r:
        torch.testing.assert_close(grads_f[name], grads_r[name], **TOL, msg=lambda m, name=name: f"{name}: {m}")


@pytest.mark.parametrize("hidden_layers", [2, 3])
@pytest.mark.parametrize("soft_reset", [False, True])
@pytest.mark.parametrize("batch", [1, 37])
def test_decisions_without_gradient_are_one_kernel_call_computing_what_training_does(
    hidden_layers, soft_reset, batch, monkeypatch
):
    """The rollout's and evaluation's forward (no gradient) of a deeper network is `if_network_counts`,
    one numba call: the same outputs as the step-by-step network and as the forward training
    differentiates."""
    calls, kernel = [], fast_if.if_network_counts
    monkeypatch.setattr(fast_if, "if_network_counts", lambda *a: calls.append(1) or kernel(*a))
    fast, reference = fast_and_reference(4, 2, 64, 16, 7 * hidden_layers + batch, hidden_layers, soft_reset=soft_reset)
    Spiking_PPO.orthogonal_init(fast)
    reference.load_state_dict(fast.state_dict())
    for scale in (0.3, 1.0, 4.0):
        x = torch.randn(batch, 4, generator=torch.Generator().manual_seed(batch)) * scale
        with torch.inference_mode():
            decided, value = fast(x)
            expected, expected_value = reference(x)
        trained, trained_value = fast(x)  # with gradient: IFSpikes and a matrix product per layer
        assert len(calls) == 1
        calls.clear()
        torch.testing.assert_close(decided.loc, expected.loc, **TOL)
        torch.testing.assert_close(value, expected_value, **TOL)
        torch.testing.assert_close(decided.loc, trained.loc.detach(), **TOL)
        torch.testing.assert_close(value, trained_value.detach(), **TOL)
    with torch.no_grad():  # potentials that reach the threshold exactly (sums of halves and quarters) fire
        for network in (fast, reference):
            for i, layer in enumerate(network.critic[:-2:2] + network.actor[:-2:2]):
                layer.weight.zero_()
                layer.bias.fill_(0.5 if i % hidden_layers == 0 else 0.25)
        torch.testing.assert_close(fast(x)[0].loc, reference(x)[0].loc, **TOL)


@pytest.mark.parametrize("hidden_layers", [1, 2, 3])
@pytest.mark.parametrize("soft_reset", [False, True])
@pytest.mark.parametrize("batch, actions", [(1, 6), (5, 1), (4, 2)])
def test_the_policy_step_in_one_kernel_is_act_to_float_rounding(hidden_layers, soft_reset, batch, actions):
    """--compile's policy step of the spiking network (`fast_if.decisions`): the action, its
    log-probability and the value that `Spiking_PPO.act` computes from the same noise."""
    model, _ = fast_and_reference(17, actions, 64, 16, batch + actions, hidden_layers, 4.0, soft_reset)
    Spiking_PPO.orthogonal_init(model)
    with torch.no_grad():
        model.log_std.copy_(torch.linspace(-1.5, 0.5, actions))  # a std of its own for each dimension
        for linear in (m for m in model.modules() if isinstance(m, torch.nn.Linear)):
            linear.bias.uniform_(-0.5, 0.5, generator=torch.Generator().manual_seed(linear.out_features))
    decide = fast_if.decisions(model)
    assert decide is not None
    rng = torch.Generator().manual_seed(hidden_layers)
    for scale in (0.3, 1.0, 4.0):
        obs, noise = torch.randn(batch, 17, generator=rng) * scale, torch.randn(batch, actions, generator=rng)
        with torch.inference_mode():
            for ours, acts in zip(decide(model, obs, noise), Spiking_PPO.act(model, obs, noise), strict=True):
                assert ours.shape == acts.shape and ours.dtype == acts.dtype
                torch.testing.assert_close(ours, acts, **TOL)


def test_the_policy_step_in_one_kernel_follows_the_parameters_wherever_they_change():
    """`decide` keeps its arrays of the parameters from one call to the next: they must show every
    change of the parameters, and another model's parameters when it is given another model."""
    model, _ = fast_and_reference(5, 2, 16, 16, 0, hidden_layers=2)
    other, _ = fast_and_reference(5, 2, 16, 16, 1, hidden_layers=2)
    decide, rng = fast_if.decisions(model), torch.Generator().manual_seed(0)

    def check(net):
        obs, noise = torch.randn(3, 5, generator=rng) * 3, torch.randn(3, 2, generator=rng)
        with torch.inference_mode():
            for ours, acts in zip(decide(net, obs, noise), Spiking_PPO.act(net, obs, noise), strict=True):
                torch.testing.assert_close(ours, acts, **TOL)

    change_parameters_every_way(model, other, SpikingArgs(), check, rng)


def test_the_decisions_without_gradient_follow_the_parameters_wherever_they_change():
    """`if_network_counts` keeps its arrays of the parameters between calls (`kept_views`): the
    eager decisions still show every change of the parameters, each of two networks its own, and the
    arrays kept for a network do not keep it alive."""
    model, reference = fast_and_reference(5, 2, 16, 16, 0, hidden_layers=2)
    other, _ = fast_and_reference(5, 2, 16, 16, 1, hidden_layers=2)
    rng = torch.Generator().manual_seed(0)

    def check(net):
        reference.load_state_dict(net.state_dict())
        obs = torch.randn(3, 5, generator=rng) * 3
        with torch.inference_mode():
            (decided, value), (expected, expected_value) = net(obs), reference(obs)
        torch.testing.assert_close(decided.loc, expected.loc, **TOL)
        torch.testing.assert_close(value, expected_value, **TOL)

    change_parameters_every_way(model, other, SpikingArgs(), check, rng)
    first_linear = weakref.ref(other.critic[0])
    del other
    gc.collect()
    assert first_linear() is None


def test_the_policy_step_has_one_kernel_only_where_the_kernel_computes_the_network(monkeypatch):
    for hidden_layers in (1, 2):
        assert fast_if.decisions(fast_and_reference(4, 2, 8, 16, 0, hidden_layers=hidden_layers)[0]) is not None
    assert fast_if.decisions(PPO.AGENT.build(4, 2, PPO.AnnArgs(hidden_layers=2))) is None
    monkeypatch.setattr(fast_if, "NUMBA_ON_CPU", False)  # as on a GPU: torch kernels, compiled
    assert fast_if.decisions(fast_and_reference(4, 2, 8, 16, 0, hidden_layers=2)[0]) is None


@pytest.mark.parametrize("hidden_layers", [1, 2])
def test_the_autograd_functions_bind_their_arguments_without_computing_a_signature(hidden_layers, monkeypatch):
    """torch binds an autograd.Function's arguments to its forward's signature at every apply; the
    fast path's Functions keep theirs (`signature_kept`), so that no call computes one anew."""
    model, _ = fast_and_reference(4, 2, 16, 8, 0, hidden_layers)
    computed, compute = [], inspect._signature_from_function

    def counted(cls, function, *args, **kwargs):
        computed.append(function.__qualname__)
        return compute(cls, function, *args, **kwargs)

    monkeypatch.setattr(inspect, "_signature_from_function", counted)
    dist, value = model(torch.randn(5, 4))
    (dist.loc.sum() + value.sum()).backward()
    with torch.inference_mode():
        model(torch.randn(5, 4))
    assert [name for name in computed if name.endswith(".forward")] == []


@pytest.mark.parametrize("batch", [1, 37])
@pytest.mark.parametrize("T", [16, 7])
def test_the_product_on_periodic_spikes_is_the_dense_product_and_so_are_its_gradients(batch, T):
    """`PeriodicLinear` against torch's dense product on the spikes of hard-reset IF neurons under
    constant currents: among them inputs that fire at every step (period 1), at the last step only
    (period T), at a period that does not divide T, and never."""
    g = torch.Generator().manual_seed(batch + T)
    currents = torch.randn(2, 1, batch, 24, generator=g)
    currents[..., :4] = torch.tensor([1.5, 1 / T, 1 / 3, -0.5])  # periods 1, T, 3 and none
    spikes = fast_if.if_spikes(currents, T, 1.0, 4.0, False).requires_grad_()
    periods = (spikes[:, :, 0, :4].argmax(1) + 1) * spikes[:, :, 0, :4].any(1)
    assert periods.tolist() == [[1, T, 3, 0]] * 2
    weight = torch.randn(2, 24, 5, generator=g, requires_grad=True)
    bias = torch.randn(2, 5, generator=g, requires_grad=True)
    grad = torch.randn(2, T, batch, 5, generator=g)

    out = fast_if.linear_of_periodic_spikes(spikes, weight, bias)
    expected = torch.baddbmm(bias.unsqueeze(1), spikes.flatten(1, 2), weight).view(2, T, batch, 5)
    torch.testing.assert_close(out, expected)
    for got, want in zip(
        torch.autograd.grad(out, (spikes, weight, bias), grad),
        torch.autograd.grad(expected, (spikes, weight, bias), grad),
        strict=True,
    ):  # the weights' gradient sums up to 37 x 16 terms of size 1, in another order: float32 rounding
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)


def test_the_inputs_above_cover_every_firing_regime():
    """Silent neurons, neurons firing at every step and those in between all occur in the tests above."""
    fast, _ = fast_and_reference(4, 2, 32, 16, seed=256 * 100 + 16)
    regimes = set()
    for scale in (0.3, 1.0, 4.0):
        x = torch.randn(256, 4, generator=torch.Generator().manual_seed(256 + 16)) * scale
        h = torch.cat((fast.critic[0](x), fast.actor[0](x)), dim=-1).detach()
        v, rate = torch.zeros_like(h), torch.zeros_like(h)
        for _ in range(16):
            v = v + h
            spike = (v >= 1.0).float()
            rate += spike / 16
            v = v * (1 - spike)
        regimes |= {"silent"} if (rate == 0).any() else set()
        regimes |= {"every step"} if (rate == 1).any() else set()
        regimes |= {"occasionally"} if ((rate > 0) & (rate < 1)).any() else set()
    assert regimes == {"silent", "every step", "occasionally"}


def test_state_dict_of_one_path_loads_into_the_other_with_the_same_result():
    torch.manual_seed(3)
    fast = ActorCritic(6, 3, 24, impl="fast")
    reference = ActorCritic(6, 3, 24, impl="reference")
    x = torch.randn(10, 6) * 2
    before = fast(x)[1]
    reference.load_state_dict(fast.state_dict())
    fast.load_state_dict(reference.state_dict())
    torch.testing.assert_close(reference(x)[1], before, **TOL)
    torch.testing.assert_close(fast(x)[1], before, **TOL)


@pytest.mark.parametrize("hidden_layers,preset", [(1, "tutorial"), (2, "cleanrl")])
def test_one_ppo_update_takes_both_paths_to_the_same_weights(hidden_layers, preset):
    """A whole update (30 epochs of Adam on one rollout; or CleanRL's, every detail on, for 2 of its 10
    epochs) differs between the paths by rounding only.

    The paths round differently, so after enough Adam steps some potential lands on the threshold's
    other side in one path and not in the other, and from then on the two updates part. With the deep
    network that happened in epoch 9 of 10 on an AVX-512 machine (and on none before it), so the deep
    case runs 2 epochs: 16 Adam steps."""
    args = apply_preset(SpikingArgs(num_steps=512), PRESETS[preset]["Box"], {"num_steps"})
    if hidden_layers > 1:
        args.ppo_epochs = 2
    fast, reference = fast_and_reference(4, 2, 32, 16, seed=7, hidden_layers=hidden_layers)
    g = torch.Generator().manual_seed(7)
    states, actions = torch.randn(512, 4, generator=g) * 2, torch.randn(512, 2, generator=g)
    with torch.no_grad():
        dist, values = fast(states)
        log_probs = dist.log_prob(actions)
    returns = values + torch.randn(512, 1, generator=g)
    for model in (fast, reference):
        optimizer = Adam(model.parameters(), lr=args.learning_rate, eps=args.adam_eps)
        batches = torch.Generator().manual_seed(5)
        ppo_update(model, optimizer, args, states, actions, log_probs, returns, returns - values, values, batches)
    initial, _ = fast_and_reference(4, 2, 32, 16, 7, hidden_layers)
    moved = max((p - q).abs().max().item() for p, q in zip(fast.parameters(), initial.parameters(), strict=True))
    assert moved > 1e-3  # the update did something
    for (name, p), q in zip(fast.state_dict().items(), reference.state_dict().values(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-6, rtol=1e-5, msg=lambda m, name=name: f"{name}: {m}")


CHANGED_NETWORKS = {  # what a reader might change in ActorCritic's branch(), and how the fast path refuses it
    "LIF hidden neurons": (("actor", 1, lambda: neuron.LIFNode(tau=2.0)), "actor is Linear -> LIFNode -> Linear"),
    "a detached reset": (("critic", 1, lambda: neuron.IFNode(detach_reset=True)), "critic.1 detaches its reset"),
    "another surrogate": (
        ("actor", 1, lambda: neuron.IFNode(surrogate_function=surrogate.ATan())),
        "actor.1's surrogate is ATan",
    ),
    "a reset to -0.5": (("actor", 1, lambda: neuron.IFNode(v_reset=-0.5)), "actor.1 resets to -0.5"),
    "another threshold in one branch": (
        ("critic", 1, lambda: neuron.IFNode(v_threshold=0.5)),
        "critic.1's (threshold, reset, alpha) (0.5, 0.0, 4.0) differ from actor.1's (1.0, 0.0, 4.0)",
    ),
    "a readout that fires": (("actor", 3, lambda: neuron.LIFNode(tau=2.0)), "-> LIFNode, not Linear"),
    "a Linear without bias": (("critic", 2, lambda: torch.nn.Linear(24, 1, bias=False)), "critic.2 has no bias"),
}


@pytest.mark.parametrize("change", CHANGED_NETWORKS, ids=list(CHANGED_NETWORKS))
def test_the_fast_path_refuses_a_network_it_does_not_compute_and_the_reference_path_runs_it(change):
    (branch, index, module), message = CHANGED_NETWORKS[change]
    model = ActorCritic(6, 3, 24, impl="reference")
    assert fast_if.fast_path_mismatch(model, NonSpikingLIFNode) is None
    getattr(model, branch)[index] = module()
    with pytest.raises(ValueError, match="the fast path computes the tutorial's network only") as refused:
        model.prepare_fast_path()  # what ActorCritic(..., impl="fast") calls
    assert message in str(refused.value) and "--snn-impl reference" in str(refused.value)
    dist, value = model(torch.randn(5, 6))  # step by step, as the modules define it
    assert dist.loc.shape == (5, 3) and value.shape == (5, 1) and torch.isfinite(dist.loc).all()
    scalars = AGENT.diagnostics(model, torch.randn(5, 6))  # stepped as defined, not by the IF kernels
    tags = {f"snn/{kind}/{name}" for kind in ("firing_rate", "never_firing_fraction") for name in ("actor", "critic")}
    assert scalars.keys() == tags and all(0 <= value <= 1 for value in scalars.values())


@pytest.mark.parametrize("hidden_layers, soft_reset", [(1, False), (3, True)])
def test_the_tutorials_network_and_its_variants_by_flag_are_the_fast_paths(hidden_layers, soft_reset):
    model = ActorCritic(6, 3, 24, hidden_layers=hidden_layers, readout_tau=16.0, soft_reset=soft_reset)
    assert fast_if.fast_path_mismatch(model, NonSpikingLIFNode) is None
    assert AGENT.diagnostics(model, torch.randn(5, 6))  # firing rates of every IF layer


def test_a_branch_built_of_other_neurons_is_refused_when_the_model_is_built(monkeypatch):
    # branch() as a reader might rewrite it: LIF neurons where the tutorial has IF ones
    lif = types.SimpleNamespace(IFNode=lambda v_reset: neuron.LIFNode(tau=2.0, v_reset=v_reset))
    monkeypatch.setattr(Spiking_PPO, "neuron", lif)
    with pytest.raises(ValueError, match="critic is Linear -> LIFNode -> Linear -> NonSpikingLIFNode"):
        ActorCritic(6, 3, 24)
    assert isinstance(ActorCritic(6, 3, 24, impl="reference").actor[1], neuron.LIFNode)


def test_a_branch_of_other_neurons_without_snn_impl_reference_is_one_line_exit_2_and_writes_nothing(
    monkeypatch, runs_dir
):
    lif = types.SimpleNamespace(IFNode=lambda v_reset: neuron.LIFNode(tau=2.0, v_reset=v_reset))
    monkeypatch.setattr(Spiking_PPO, "neuron", lif)
    result = run_script("Spiking_PPO.py", "--max-steps", "64", "--quiet", "--runs-dir", str(runs_dir))
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "LIFNode" in result.stderr and "--snn-impl reference" in result.stderr
    assert not runs_dir.exists() or not any(runs_dir.iterdir())


def test_a_branch_of_other_neurons_trains_by_reference_and_logs_their_firing_rates(monkeypatch, runs_dir):
    lif = types.SimpleNamespace(IFNode=lambda v_reset: neuron.LIFNode(tau=2.0, v_reset=v_reset))
    monkeypatch.setattr(Spiking_PPO, "neuron", lif)
    run_dir, _ = short_run("Spiking_PPO.py", runs_dir, "--snn-impl", "reference", "--hidden-layers", "2")
    logged = scalars(run_dir)
    for tag in ("actor", "critic", "actor_layer2", "critic_layer2"):
        rates = [value for _, value in logged[f"snn/firing_rate/{tag}"]]
        assert len(rates) == 2 and all(0 <= rate <= 1 for rate in rates), tag  # one per update
