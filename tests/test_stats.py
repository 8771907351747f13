"""machinery.stats: what a summary over seeds may claim."""

import math
import warnings

import numpy as np
import pytest
import torch

from machinery import stats


def test_mean_and_sample_standard_deviation():
    values = [1.0, 2.0, 4.0]
    assert stats.mean_std(values) == f"{np.mean(values):.1f} ± {np.std(values, ddof=1):.1f}"
    assert stats.mean_std(values) == "2.3 ± 1.5"  # by hand: var = ((4/3)^2 + (1/3)^2 + (5/3)^2) / 2 = 7/3
    assert stats.mean_std([5.0]) == "5.0"  # one seed has no spread


def test_a_figure_reached_by_some_seeds_says_by_how_many():
    assert stats.mean_std([100.0, float("nan"), 300.0], ".0f") == "200 ± 141 (2/3 seeds)"
    assert stats.mean_std([float("nan")] * 2) == "not reached"
    assert stats.mean_interval([1.0, float("nan")]) == "1.0 [1.0, 1.0] (1/2 seeds)"


def test_two_means_lie_apart_by_their_difference_over_its_standard_error():
    # by hand: means 2 and 5, sample variances 1 and 2; standard error sqrt(1/3 + 2/2) = sqrt(4/3)
    assert stats.standard_errors_apart([1.0, 2.0, 3.0], [4.0, 6.0]) == pytest.approx(-3 / math.sqrt(4 / 3))
    assert stats.standard_errors_apart([4.0, 6.0], [1.0, 2.0, 3.0]) == pytest.approx(3 / math.sqrt(4 / 3))
    assert math.isnan(stats.standard_errors_apart([1.0], [4.0, 6.0]))  # one seed: no spread to measure by
    assert math.isnan(stats.standard_errors_apart([500.0, 500.0], [500.0, 500.0]))
    assert stats.standard_errors_apart([500.0, 500.0], [490.0, 490.0]) == math.inf


def test_a_tables_cell_of_standard_errors_apart_leaves_out_runs_with_no_value_and_says_dash_for_none():
    assert stats.apart([1.0, 2.0, 3.0], [4.0, 6.0]) == f"{-3 / math.sqrt(4 / 3):.1f}" == "-2.6"
    assert stats.apart([1.0, 2.0, 3.0, math.nan], [4.0, 6.0]) == "-2.6"  # a run that never reached the target
    assert stats.apart([1.0, math.nan], [4.0, 6.0]) == "-"  # one value left: no spread to measure by
    assert stats.apart([500.0, 500.0], [490.0, 490.0]) == "inf"


def test_with_fewer_than_five_seeds_the_interval_is_the_range_and_says_so():
    samples = np.array([[1.0, 10.0], [3.0, 30.0]])
    low, high = stats.interval(samples)
    np.testing.assert_array_equal(low, [1.0, 10.0])
    np.testing.assert_array_equal(high, [3.0, 30.0])
    assert "range of the runs" in stats.interval_kind(2) and "too few" in stats.interval_kind(4)
    assert stats.interval_kind(5) == "95% bootstrap interval of the mean"


def test_with_five_or_more_seeds_the_interval_is_a_bootstrap_interval_of_the_mean():
    rng = np.random.default_rng(0)
    samples = rng.normal(10.0, 2.0, size=(20, 1))
    low, high = stats.interval(samples, resamples=4000)
    standard_error = samples.std(ddof=1) / np.sqrt(len(samples))
    # the bootstrap interval of the mean is close to mean ± 1.96 standard errors
    assert low[0] == pytest.approx(samples.mean() - 1.96 * standard_error, abs=0.3 * standard_error)
    assert high[0] == pytest.approx(samples.mean() + 1.96 * standard_error, abs=0.3 * standard_error)
    assert samples.min() < low[0] < high[0] < samples.max()


def test_explained_variance_is_one_minus_the_residual_variance_over_the_targets():
    targets, values = torch.tensor([1.0, 2.0, 4.0, 7.0]), torch.tensor([1.5, 2.0, 3.0, 7.5])
    # by hand: the targets' mean 3.5, variance (6.25 + 2.25 + 0.25 + 12.25) / 4 = 5.25; the residuals
    # -0.5, 0, 1, -0.5 have mean 0 and variance (0.25 + 0 + 1 + 0.25) / 4 = 0.375
    assert stats.explained_variance(values, targets) == pytest.approx(1 - 0.375 / 5.25)
    assert stats.explained_variance(targets, targets) == 1.0
    assert stats.explained_variance(torch.full((4,), 3.5), targets) == 0.0  # the mean predicts nothing of the spread


def test_explained_variance_of_targets_that_do_not_vary_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch's unbiased var of one sample warned, at every update
        assert math.isnan(stats.explained_variance(torch.tensor([0.3]), torch.tensor([1.0])))  # a rollout of one step
        assert math.isnan(stats.explained_variance(torch.tensor([0.3, 0.5]), torch.tensor([1.0, 1.0])))
