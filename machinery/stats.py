"""Results over seeds, stated no more strongly than the seeds allow.

compare.py and sweep.py summarize runs of several seeds with these, so that both say the same
thing the same way: a mean with the sample standard deviation (n - 1 in the denominator), how
many seeds a figure rests on when some runs never reached it, and an interval that is a 95%
bootstrap interval of the mean only with enough seeds; with fewer it is the range of the runs,
and says so. compare.py and bench/reproduce.py say by them how many standard errors two means
lie apart. It knows numbers, not runs. Also the one statistic of a run's own that TensorBoard
shows at each update beside the losses, the critic's explained variance, computed as CleanRL does.
"""

from __future__ import annotations

import math

import numpy as np

MIN_SEEDS_FOR_INTERVAL = 5  # a bootstrap over 2 to 4 values only restates their range
BOOTSTRAP_INTERVAL = "95% bootstrap interval of the mean"
RANGE = "range of the runs (fewer than 5 seeds: too few for an interval)"


def interval_kind(n: int) -> str:
    return BOOTSTRAP_INTERVAL if n >= MIN_SEEDS_FOR_INTERVAL else RANGE


def interval(samples: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Low and high of the `interval_kind` over axis 0 (the seeds), for every other entry."""
    samples = np.asarray(samples, dtype=float)
    if len(samples) < MIN_SEEDS_FOR_INTERVAL:
        return samples.min(axis=0), samples.max(axis=0)
    picks = np.random.default_rng(seed).integers(0, len(samples), size=(resamples, len(samples)))
    means = samples[picks].mean(axis=1)
    return np.percentile(means, 2.5, axis=0), np.percentile(means, 97.5, axis=0)


def reached(values: list[float]) -> list[float]:
    return [v for v in values if math.isfinite(v)]


def seeds_note(values: list[float]) -> str:
    """' (k/n seeds)' when only k of the n runs have a value (reached a target, say); else ''."""
    k = len(reached(values))
    return "" if k == len(values) else f" ({k}/{len(values)} seeds)"


def mean_std(values: list[float], fmt: str = ".1f") -> str:
    """'mean ± sample std' over the finite values, with the seeds note; 'not reached' when none are."""
    finite = reached(values)
    if not finite:
        return "not reached"
    if len(finite) == 1:
        return f"{finite[0]:{fmt}}{seeds_note(values)}"
    return f"{np.mean(finite):{fmt}} ± {np.std(finite, ddof=1):{fmt}}{seeds_note(values)}"


def mean_interval(values: list[float], fmt: str = ".1f") -> str:
    """'mean [low, high]' over the finite values (the interval of `interval_kind`), with the seeds note."""
    finite = reached(values)
    if not finite:
        return "not reached"
    low, high = interval(np.array(finite))
    return f"{np.mean(finite):{fmt}} [{low:{fmt}}, {high:{fmt}}]{seeds_note(values)}"


def standard_errors_apart(a: list[float], b: list[float]) -> float:
    """(mean(a) - mean(b)) over the standard error of that difference, sqrt(var(a) / n_a + var(b) / n_b)
    with sample variances (Welch's t statistic): how far apart two means over seeds lie, measured by
    their spread. NaN where either has fewer than 2 values (no spread to measure by), or where neither
    spreads and the means are equal; +-inf where neither spreads and the means differ."""
    if len(a) < 2 or len(b) < 2:
        return math.nan
    difference = float(np.mean(a) - np.mean(b))
    error = math.sqrt(np.var(a, ddof=1) / len(a) + np.var(b, ddof=1) / len(b))
    if error == 0:
        return math.nan if difference == 0 else math.copysign(math.inf, difference)
    return difference / error


def apart(a: list[float], b: list[float]) -> str:
    """`standard_errors_apart` of the finite values, as a table's cell: '-' where it is NaN."""
    z = standard_errors_apart(reached(a), reached(b))
    return "-" if math.isnan(z) else f"{z:.1f}"


def explained_variance(values, targets) -> float:
    """1 - Var(targets - values) / Var(targets) of two tensors: how much of the returns' spread the
    critic predicted (1: all of it, 0: no more than their mean would); NaN where the targets do not
    vary, as CleanRL logs it (torch's unbiased variance of a single sample would warn, and be NaN)."""
    spread = targets.var(correction=0)
    return math.nan if spread == 0 else float(1 - (targets - values).var(correction=0) / spread)
