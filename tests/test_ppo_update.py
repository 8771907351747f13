"""Spiking_PPO.ppo_update and the standard PPO details its flags turn on, each against a hand
computation or the library it mirrors; and the default update against the tutorial's, bit for bit."""

import dataclasses
import math
from types import SimpleNamespace

import pytest
import torch

from machinery import fast_ann, fast_if
from machinery.speed import Adam, FusedGradientStep, hot_path
from PPO import ActorCritic as AnnActorCritic
from Spiking_PPO import (
    ActorCritic,
    Args,
    act,
    annealed_learning_rate,
    gradient_step,
    loss_statistics,
    orthogonal_init,
    ppo_loss,
    ppo_update,
)

BATCH, OBS, ACTIONS = 256, 3, 2


def rollout(model, seed=0):
    """A batch as update() hands it to ppo_update: states, actions, old log-probs, returns, advantages, values."""
    g = torch.Generator().manual_seed(seed)
    states, actions = torch.randn(BATCH, OBS, generator=g), torch.randn(BATCH, ACTIONS, generator=g)
    with torch.no_grad():
        dist, values = model(states)
        log_probs = dist.log_prob(actions)
    returns = values + torch.randn(BATCH, 1, generator=g)
    return states, actions, log_probs, returns, returns - values, values


def new_model(seed=1, hidden_layers=1):
    torch.manual_seed(seed)
    return AnnActorCritic(OBS, ACTIONS, 16, hidden_layers=hidden_layers)


def new_spiking_model(seed=1, hidden_layers=1):
    torch.manual_seed(seed)
    model = ActorCritic(OBS, ACTIONS, 16, T=8, hidden_layers=hidden_layers)
    for branch in (model.actor, model.critic):
        with torch.no_grad():
            branch[0].weight.mul_(3)  # the observations' currents make the first layer fire
    return model


def update(model, args, batch, seed=5, optimizer=None):
    optimizer = optimizer or Adam(model.parameters(), lr=args.learning_rate, eps=args.adam_eps)
    return ppo_update(model, optimizer, args, *batch, generator=torch.Generator().manual_seed(seed))


def one_step(**flags) -> Args:
    """One epoch of one mini-batch: the statistics returned are those of the batch before the step."""
    return Args(num_envs=1, num_steps=BATCH, mini_batch_size=BATCH, ppo_epochs=1, **flags)


def tutorial_update(model, optimizer, args, states, actions, log_probs, returns, advantages, generator):
    """The tutorial's update as it was written before the flags existed (an independent copy)."""
    for _ in range(args.ppo_epochs):
        ids = torch.randperm(states.shape[0], generator=generator)
        for start in range(0, states.shape[0] // args.mini_batch_size * args.mini_batch_size, args.mini_batch_size):
            i = ids[start : start + args.mini_batch_size]
            dist, value = model(states[i])
            entropy = dist.entropy().mean()
            ratio = (dist.log_prob(actions[i]) - log_probs[i]).exp()
            surr1 = ratio * advantages[i]
            surr2 = torch.clamp(ratio, 1.0 - args.clip_param, 1.0 + args.clip_param) * advantages[i]
            loss = args.vf_coef * (returns[i] - value).pow(2).mean() - torch.min(surr1, surr2).mean()
            loss = loss - args.ent_coef * entropy
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()


@pytest.mark.parametrize("spiking", [False, True])
def test_the_default_update_is_the_tutorials_bit_for_bit(spiking):
    args = Args(mini_batch_size=64, ppo_epochs=3)
    models = []
    for _ in range(2):
        torch.manual_seed(1)
        models.append(ActorCritic(OBS, ACTIONS, 16, T=8) if spiking else AnnActorCritic(OBS, ACTIONS, 16))
    batch = rollout(models[0])
    update(models[0], args, batch)
    optimizer = Adam(models[1].parameters(), lr=args.learning_rate)
    tutorial_update(models[1], optimizer, args, *batch[:5], torch.Generator().manual_seed(5))
    for p, q in zip(models[0].parameters(), models[1].parameters(), strict=True):
        assert torch.equal(p, q)


def test_normalized_advantages_make_the_update_blind_to_their_scale_and_offset():
    """Per mini-batch (A - mean) / std is the same for A and 3 A + 5, in every mini-batch: the updates
    agree; without --norm-adv they do not."""
    for norm_adv, same in ((True, True), (False, False)):
        args = Args(mini_batch_size=64, ppo_epochs=2, norm_adv=norm_adv)
        first, second = new_model(), new_model()
        batch = rollout(first)
        update(first, args, batch)
        update(second, args, (*batch[:4], 3 * batch[4] + 5, batch[5]))
        close = all(
            torch.allclose(p, q, atol=1e-6) for p, q in zip(first.parameters(), second.parameters(), strict=True)
        )
        assert close == same


def test_normalized_advantages_have_zero_mean():
    """The actor loss at the first step (ratio 1, so no clipping) is -mean(normalized A): 0, whatever
    the advantages' own mean (their scale is the test above)."""
    model, args = new_model(), one_step(norm_adv=True, vf_coef=0.0, ent_coef=0.0)
    batch = rollout(model)
    stats = update(model, args, (*batch[:4], 10 * batch[4] + 3, batch[5]))
    assert stats["actor_loss"] == pytest.approx(0.0, abs=1e-6)


def test_the_joint_ratio_is_the_product_of_the_per_dimension_ratios():
    model, flags = new_model(), dict(clip_param=0.1)
    batch = rollout(model)
    with torch.no_grad():  # the policy before the step moved away from the rollout's
        for p in model.actor.parameters():
            p.add_(0.3 * torch.randn_like(p))
        dist, _ = model(batch[0])
    per_dim = (dist.log_prob(batch[1]) - batch[2]).exp()
    joint = per_dim.prod(dim=-1, keepdim=True)
    advantage = batch[4]

    def clipped_loss(ratio):
        return -torch.min(ratio * advantage, ratio.clamp(0.9, 1.1) * advantage).mean().item()

    stats = update(model, one_step(joint_ratio=True, **flags), batch)
    assert stats["actor_loss"] == pytest.approx(clipped_loss(joint), rel=1e-5)
    assert stats["entropy"] == pytest.approx(dist.entropy().sum(-1).mean().item(), rel=1e-6)
    assert clipped_loss(joint) != pytest.approx(clipped_loss(per_dim), rel=1e-3)  # the flag matters here


def test_the_clipped_value_loss_is_the_larger_of_the_two_errors():
    model, args = new_model(), one_step(clip_vloss=True, clip_param=0.2)
    states, actions, log_probs, returns, advantages, values = rollout(model)
    with torch.no_grad():
        value = model(states)[1]
    old_values = value + torch.linspace(-0.5, 0.5, BATCH).unsqueeze(1)  # some within the clip range, some not
    clipped = old_values + (value - old_values).clamp(-0.2, 0.2)
    expected = torch.max((returns - value) ** 2, (returns - clipped) ** 2).mean().item()
    stats = update(model, args, (states, actions, log_probs, returns, advantages, old_values))
    assert stats["critic_loss"] == pytest.approx(expected, rel=1e-5)
    assert expected > ((returns - value) ** 2).mean().item()


class GradientNorms(Adam):
    """Adam that records the global gradient norm it is asked to step with."""

    norms: list

    def step(self):
        self.norms.append(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.params])).item())
        super().step()


@pytest.mark.parametrize("max_grad_norm", [None, 0.05])
def test_gradient_clipping_bounds_the_global_norm(max_grad_norm):
    model = new_model()
    args = Args(mini_batch_size=64, ppo_epochs=2, max_grad_norm=max_grad_norm)
    optimizer = GradientNorms(model.parameters(), lr=args.learning_rate)
    optimizer.norms = []
    update(model, args, rollout(model), optimizer=optimizer)
    if max_grad_norm is None:
        assert max(optimizer.norms) > 0.05  # so the clipped case has something to clip
    else:
        assert max(optimizer.norms) == pytest.approx(0.05, rel=1e-4)


def test_kl_early_stopping_ends_the_epochs():
    for target_kl, epochs in ((None, 5), (1e-9, 1)):
        model = new_model()
        stats = update(model, Args(mini_batch_size=64, ppo_epochs=5, target_kl=target_kl), rollout(model))
        assert stats["epochs"] == epochs


def test_the_learning_rate_anneals_linearly_to_zero_at_max_steps():
    args = Args(learning_rate=3e-4, anneal_lr=True, num_steps=100, max_steps=1000)  # 10 updates
    rates = [annealed_learning_rate(args, done) for done in range(11)]
    assert rates[0] == 3e-4  # the first update gets the full rate
    assert rates == pytest.approx([3e-4 * (1 - k / 10) for k in range(11)])
    assert rates[-1] == 0.0  # after the last update
    assert annealed_learning_rate(dataclasses.replace(args, anneal_lr=False), 7) == 3e-4


@pytest.mark.parametrize("spiking", [False, True])
def test_orthogonal_init_has_the_usual_gains_and_zero_biases(spiking):
    model = ActorCritic(5, 3, 16, T=4, hidden_layers=2) if spiking else AnnActorCritic(5, 3, 16, hidden_layers=2)
    orthogonal_init(model)
    for branch, output_gain in ((model.actor, 0.01), (model.critic, 1.0)):
        linears = [m for m in branch if isinstance(m, torch.nn.Linear)]
        assert len(linears) == 3
        for layer in linears:
            w, gain = layer.weight.detach(), output_gain if layer is linears[-1] else math.sqrt(2)
            gram = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # orthogonal rows or columns
            torch.testing.assert_close(gram, gain**2 * torch.eye(min(w.shape)), atol=1e-5, rtol=1e-5)
            assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize(
    "network, hidden_layers", [("ann", 2), ("snn", 1), ("snn", 2)]
)  # the SNN's two fast paths: the spike count (IFSpikeCount), and spikes step by step (IFSpikes)
def test_the_compiled_gradient_step_and_policy_step_are_the_eager_ones_to_float_rounding(network, hidden_layers):
    """--compile runs `act` as one numba kernel (fast_if's for the SNN, fast_ann's for the ANN) and
    `gradient_step` as one compiled function (speed.FusedGradientStep; the SNN's numba kernels as custom ops in it):
    the same functions, their float32 sums in another order. Ten Adam steps, with clipping that binds
    and a learning rate that changes each step (as --anneal-lr changes it) without a recompilation,
    leave the same parameters and optimizer state."""
    args = Args(compile=True, num_envs=4, mini_batch_size=BATCH, norm_adv=True, joint_ratio=True)
    args.clip_vloss, args.max_grad_norm, args.adam_eps = True, 0.05, 1e-5
    build = new_model if network == "ann" else new_spiking_model
    models = [build(hidden_layers=hidden_layers) for _ in range(2)]
    batch = rollout(models[0])
    for model in models:
        with torch.no_grad():
            model.log_std.fill_(-0.3)  # the ratios leave 1, so the clipping and the KL have work to do
    optimizers = [Adam(model.parameters(), lr=1e-3, eps=args.adam_eps) for model in models]
    spec = SimpleNamespace(obs_dim=OBS, num_actions=ACTIONS)
    grads = torch.autograd.grad(ppo_loss(models[0], args, *batch)[0], list(models[0].parameters()))
    assert torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])) > 2 * args.max_grad_norm  # clipping binds
    initial = [p.detach().clone() for p in models[0].parameters()]
    compiled_act, fused = hot_path(act, gradient_step, ppo_loss, models[1], optimizers[1], args, spec)
    assert isinstance(fused, FusedGradientStep)
    assert compiled_act is (fast_if.decide if network == "snn" else fast_ann.decide)  # the policy step's kernel
    assert all(step == 0 for step in optimizers[1].steps)  # compiling stepped copies, not the model
    with torch._dynamo.config.patch(error_on_recompile=True):
        for k in range(10):
            stats = []
            for model, optimizer, step_fn in zip(models, optimizers, (gradient_step, fused), strict=True):
                optimizer.lr = 1e-3 * (1 - k / 10)
                loss, terms = step_fn(model, optimizer, args, *batch)
                stats.append(loss_statistics(loss, *terms, args.clip_param))
            torch.testing.assert_close(stats[1], stats[0], atol=1e-5, rtol=1e-4)
    assert stats[0][5] > 0  # some ratios were clipped
    assert max((p - q).abs().max().item() for p, q in zip(models[0].parameters(), initial, strict=True)) > 1e-3
    for p, q in zip(models[1].parameters(), models[0].parameters(), strict=True):
        torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)
    for state in ("steps", "exp_avgs", "exp_avg_sqs"):
        for a, b in zip(getattr(optimizers[1], state), getattr(optimizers[0], state), strict=True):
            torch.testing.assert_close(a, b, atol=1e-7, rtol=1e-4)
    obs, noise = batch[0][:4], torch.randn(4, ACTIONS)
    with torch.inference_mode():
        for a, b in zip(compiled_act(models[0], obs, noise), act(models[0], obs, noise), strict=True):
            torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_compiled_steps_for_two_models_each_run_their_own_graph():
    """FusedGradientStep keeps only torch.compile's guards on tensors, so the graph of one step, its
    args baked in, would pass another step's guards if the two shared the compiled code: two models
    of the same shapes, trained with other clipping and coefficients, each take the eager step."""
    batch = rollout(new_model())
    for k, (clip_param, vf_coef) in enumerate(((0.2, 0.5), (0.05, 2.0))):
        args = Args(compile=True, mini_batch_size=BATCH, clip_param=clip_param, vf_coef=vf_coef, ent_coef=0.1 * k)
        models = [new_model() for _ in range(2)]
        optimizers = [Adam(model.parameters(), lr=1e-2) for model in models]
        spec = SimpleNamespace(obs_dim=OBS, num_actions=ACTIONS)
        _, fused = hot_path(act, gradient_step, ppo_loss, models[1], optimizers[1], args, spec)
        for model, optimizer, step_fn in zip(models, optimizers, (gradient_step, fused), strict=True):
            with torch.no_grad():
                model.log_std.fill_(-0.5)  # the ratios leave 1 at the second step: clip_param matters
            for _ in range(2):
                step_fn(model, optimizer, args, *batch)
        for p, q in zip(models[1].parameters(), models[0].parameters(), strict=True):
            torch.testing.assert_close(p, q, atol=1e-5, rtol=1e-4)


def test_a_compiled_step_refuses_other_args_than_those_it_was_made_with():
    """Its args are constants in the compiled graph, unguarded: changed ones would be ignored; and it
    steps the parameters of the model it was made for, so it refuses another."""
    model, args = new_model(), Args(compile=True, mini_batch_size=BATCH)
    optimizer = Adam(model.parameters(), lr=1e-2)
    _, fused = hot_path(
        act, gradient_step, ppo_loss, model, optimizer, args, SimpleNamespace(obs_dim=OBS, num_actions=ACTIONS)
    )
    batch = rollout(model)
    fused(model, optimizer, args, *batch)
    fused(model, optimizer, dataclasses.replace(args), *batch)  # equal args are the same args
    args.ent_coef = 0.5
    with pytest.raises(ValueError, match="made for other args"):
        fused(model, optimizer, args, *batch)
    eps, optimizer.eps, args.ent_coef = optimizer.eps, 1e-5, Args.ent_coef
    with pytest.raises(ValueError, match="made for other args"):
        fused(model, optimizer, args, *batch)
    optimizer.eps, other = eps, new_model()  # all as it was made for, but the model: it would step `model`
    with pytest.raises(ValueError, match="made for another model or optimizer"):
        fused(other, Adam(other.parameters(), lr=1e-2), args, *batch)
