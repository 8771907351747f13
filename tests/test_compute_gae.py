import torch

from Spiking_PPO import compute_gae


def seed_compute_gae(next_value, rewards, masks, values, gamma, tau):
    """The tutorial's list-based GAE, transcribed as an independent reference."""
    values = values + [next_value]
    gae = 0
    returns = []
    for step in reversed(range(len(rewards))):
        delta = rewards[step] + gamma * values[step + 1] * masks[step] - values[step]
        gae = delta + gamma * tau * masks[step] * gae
        returns.insert(0, gae + values[step])
    return returns


def column(*xs):
    return torch.tensor(xs, dtype=torch.float64).reshape(-1, 1, 1)


def test_hand_computed_with_an_episode_end_inside_the_rollout():
    # One env, three steps; the episode ends at step 1 (mask 0), gamma 0.9, lambda 0.8.
    rewards, masks, values = column(1, 1, 1), column(1, 0, 1), column(0.5, 0.4, 0.3)
    next_value = torch.tensor([[0.2]], dtype=torch.float64)
    returns = compute_gae(next_value, rewards, masks, values, gamma=0.9, lam=0.8)
    # t=2: delta = 1 + 0.9*0.2 - 0.3 = 0.88               -> return 0.88 + 0.3 = 1.18
    # t=1: episode ends, delta = 1 - 0.4 = 0.6, no future -> return 0.6 + 0.4 = 1.0
    # t=0: delta = 1 + 0.9*0.4 - 0.5 = 0.86, gae = 0.86 + 0.72*0.6 = 1.292 -> 1.792
    torch.testing.assert_close(returns.flatten(), torch.tensor([1.792, 1.0, 1.18], dtype=torch.float64))


def test_no_episode_end_is_discounted_sum_when_lambda_is_one():
    rewards, masks, values = column(1, 2, 3), column(1, 1, 1), column(0, 0, 0)
    next_value = torch.tensor([[10.0]], dtype=torch.float64)
    returns = compute_gae(next_value, rewards, masks, values, gamma=0.5, lam=1.0)
    expected = [1 + 0.5 * 2 + 0.25 * 3 + 0.125 * 10, 2 + 0.5 * 3 + 0.25 * 10, 3 + 0.5 * 10]
    torch.testing.assert_close(returns.flatten(), torch.tensor(expected, dtype=torch.float64))


def test_lambda_zero_gives_one_step_td_advantages_and_gamma_zero_the_rewards():
    rewards, masks, values = column(1, 2, 3), column(1, 0, 1), column(0.5, 0.4, 0.3)
    next_value = torch.tensor([[0.2]], dtype=torch.float64)
    td = compute_gae(next_value, rewards, masks, values, gamma=0.9, lam=0.0) - values
    # r_t + 0.9 v_{t+1} mask_t - v_t, each step alone
    expected = [1 + 0.9 * 0.4 - 0.5, 2 - 0.4, 3 + 0.9 * 0.2 - 0.3]
    torch.testing.assert_close(td.flatten(), torch.tensor(expected, dtype=torch.float64))
    myopic = compute_gae(next_value, rewards, masks, values, gamma=0.0, lam=0.95)
    torch.testing.assert_close(myopic, rewards)


def test_matches_the_tutorials_gae_on_random_rollouts_of_several_envs():
    g = torch.Generator().manual_seed(0)
    steps, envs = 50, 3
    rewards = torch.rand(steps, envs, 1, generator=g)
    masks = (torch.rand(steps, envs, 1, generator=g) > 0.1).float()
    values = torch.randn(steps, envs, 1, generator=g)
    next_value = torch.randn(envs, 1, generator=g)
    returns = compute_gae(next_value, rewards, masks, values, gamma=0.99, lam=0.95)
    expected = seed_compute_gae(next_value, list(rewards), list(masks), list(values), gamma=0.99, tau=0.95)
    # to the bit: the same float32 operations in the same order, so a run's numbers do not change
    assert torch.equal(returns, torch.stack(expected))
