import pytest
import torch

from Spiking_PPO import ppo_iter


@pytest.mark.parametrize("batch_size, mini_batch_size", [(512, 256), (100, 32), (7, 7), (10, 3)])
def test_mini_batches_are_disjoint_of_the_requested_size_and_cover_the_whole_ones(batch_size, mini_batch_size):
    ids = torch.arange(batch_size)
    states = torch.stack([ids, -ids], dim=1)  # row r is (r, -r): rows stay together
    batches = list(ppo_iter(mini_batch_size, ids, states, generator=torch.Generator().manual_seed(0)))
    assert len(batches) == batch_size // mini_batch_size
    seen = torch.cat([b_ids for b_ids, _ in batches])
    assert all(len(b_ids) == mini_batch_size for b_ids, _ in batches)
    assert len(seen) == batch_size // mini_batch_size * mini_batch_size
    assert len(set(seen.tolist())) == len(seen)
    for b_ids, b_states in batches:
        torch.testing.assert_close(b_states, torch.stack([b_ids, -b_ids], dim=1))


def test_order_is_random_but_follows_the_generator():
    ids = torch.arange(64)
    first = [b for (b,) in ppo_iter(16, ids, generator=torch.Generator().manual_seed(1))]
    again = [b for (b,) in ppo_iter(16, ids, generator=torch.Generator().manual_seed(1))]
    other = [b for (b,) in ppo_iter(16, ids, generator=torch.Generator().manual_seed(2))]
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(first, other, strict=True))
    assert not torch.equal(torch.cat(first), ids)
