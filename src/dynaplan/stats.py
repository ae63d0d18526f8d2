"""Aggregates over seeds: interquartile mean and percentile-bootstrap confidence intervals.

Following Agarwal et al. 2021 ("Deep RL at the edge of the statistical precipice"): report
the interquartile mean (IQM, the mean of the middle 50% of runs), robust to one outlier
seed yet less noisy than the median, with a bootstrap CI over runs instead of a min-max
band that grows with the number of seeds.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

Statistic = Callable[..., np.ndarray]  # statistic(samples, axis=k) reduces that axis


def mean(samples: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.mean(samples, axis=axis)


def iqm(samples: np.ndarray, axis: int = 0) -> np.ndarray:
    """Interquartile mean along `axis`: drop int(n/4) values at each end after sorting
    and average the rest (scipy.stats.trim_mean(x, 0.25)); n < 4 drops nothing."""
    data = np.sort(np.asarray(samples, dtype=float), axis=axis)
    n = data.shape[axis]
    cut = int(0.25 * n)
    return np.mean(np.take(data, np.arange(cut, n - cut), axis=axis), axis=axis)


def bootstrap_ci(
    samples: np.ndarray,
    statistic: Statistic = mean,
    confidence: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Percentile bootstrap over the first axis (the runs).

    samples: [n, ...] one row per run (e.g. [seeds, points of a curve]).
    Returns (estimate, low, high), each of shape samples.shape[1:]: the statistic of the
    data and the (1 - confidence)/2 and (1 + confidence)/2 quantiles of the statistic over
    `resamples` resamplings of the n rows with replacement, drawn from a generator seeded
    with `seed` (the same data give the same interval).
    """
    data = np.asarray(samples, dtype=float)
    if data.ndim == 0 or data.shape[0] == 0:
        raise ValueError("bootstrap_ci needs at least one run")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    estimate = statistic(data, axis=0)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, data.shape[0], size=(resamples, data.shape[0]))
    stats = statistic(data[index], axis=1)  # [resamples, ...]
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(stats, [tail, 100 - tail], axis=0)
    return estimate, low, high
