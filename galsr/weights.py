"""Importance weights: their Kish effective sample size and truncation, and systematic resampling (shared by the finish's reweighting, its
importance sampler and its tempered SMC)."""
import math

import numpy as np
from scipy.special import logsumexp


def kish_ess(logw):
    """Kish effective sample size (float) of unnormalised log-weights (n,): (sum w)^2 / sum w^2 (as dynesty's
    get_neff_from_logwt, without rounding)."""
    logw = np.asarray(logw, dtype=np.float64)
    logw = logw[np.isfinite(logw)]
    if logw.size == 0:
        return 0.0
    return float(math.exp(2 * logsumexp(logw) - logsumexp(2 * logw)))


def truncate(logw):
    """(log-weights with every weight above sqrt(n) x the mean weight set to that cap, number truncated, share of
    the total weight removed); n counts finite weights (truncated importance sampling)."""
    logw = np.asarray(logw, dtype=np.float64).copy()
    finite = np.isfinite(logw)
    n = int(finite.sum())
    if n == 0:
        return logw, 0, 0.0
    log_cap = logsumexp(logw[finite]) - math.log(n) + 0.5 * math.log(n)
    over = finite & (logw > log_cap)
    total = logsumexp(logw[finite])
    removed = float(np.sum(np.exp(logw[over] - total)) - over.sum() * math.exp(log_cap - total))
    logw[over] = log_cap
    return logw, int(over.sum()), removed


def resample(logw, n, rng):
    """(n,) indices resampled in proportion to exp(logw) (systematic resampling)."""
    w = np.exp(logw - logsumexp(logw))
    return np.minimum(np.searchsorted(np.cumsum(w), (rng.random() + np.arange(n)) / n), len(w) - 1)
