"""Binary-classifier metrics in numpy: ROC AUC, rates at a threshold, and the threshold that keeps the
false-positive rate under a target.

A predicate is predicted true when its score is ``>= threshold``. False positives are the dangerous
error (the executive would move on while the drawer is still shut), so thresholds are chosen for a
maximum false-positive rate and the true-positive rate is what that costs.
"""

from __future__ import annotations

import math

import numpy as np


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(bool).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {y.shape[0]} vs {s.shape[0]}")
    if not np.all(np.isfinite(s)):
        raise ValueError("scores contain NaN or infinity")
    return y, s


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties sharing the mean of the ranks they span (what Mann-Whitney needs)."""
    values = np.asarray(values)
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    # Start of each run of equal values, and its length.
    starts = np.flatnonzero(np.r_[True, sorted_values[1:] != sorted_values[:-1]])
    lengths = np.diff(np.r_[starts, len(values)])
    mean_rank = starts + (lengths + 1) / 2.0
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, lengths)
    return ranks


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive scores above a random
    negative (ties count one half). NaN when either class is absent."""
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def rates_at_threshold(labels: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[float, float]:
    """(false-positive rate, true-positive rate) predicting ``score >= threshold``; NaN for a rate
    whose class is absent."""
    y, s = _check(labels, scores)
    predicted = s >= threshold
    n_pos = int(y.sum())
    n_neg = len(y) - n_pos
    fpr = float(np.sum(predicted & ~y) / n_neg) if n_neg else math.nan
    tpr = float(np.sum(predicted & y) / n_pos) if n_pos else math.nan
    return fpr, tpr


def threshold_for_fpr(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> float:
    """The lowest threshold (so the highest true-positive rate) whose false-positive rate on these
    samples is at most ``max_fpr``.

    With ``k = floor(max_fpr * n_neg)`` false positives allowed, the threshold must lie above the
    (k+1)-th highest negative score; it is put halfway to the next higher score seen (so it does not
    sit on a sample), or just above that negative when nothing scores higher. With no negatives the
    rate cannot be measured and the result is ``inf`` (never predict true): the caller must say so.
    """
    if not 0.0 <= max_fpr < 1.0:
        raise ValueError(f"max_fpr must be in [0, 1), got {max_fpr}")
    y, s = _check(labels, scores)
    negatives = np.sort(s[~y])[::-1]
    if len(negatives) == 0:
        return math.inf
    allowed = math.floor(max_fpr * len(negatives) + 1e-9)
    if allowed >= len(negatives):
        return float(s.min())
    bound = negatives[allowed]  # must be strictly below the threshold
    higher = s[s > bound]
    if len(higher):
        return float((bound + higher.min()) / 2.0)
    return float(np.nextafter(bound, math.inf))


def threshold_for_tpr(labels: np.ndarray, scores: np.ndarray, min_tpr: float) -> float:
    """The highest threshold whose true-positive rate on these samples is at least ``min_tpr``
    (``-inf`` with no positives: any threshold keeps the rate undefined)."""
    if not 0.0 < min_tpr <= 1.0:
        raise ValueError(f"min_tpr must be in (0, 1], got {min_tpr}")
    y, s = _check(labels, scores)
    positives = np.sort(s[y])[::-1]
    if len(positives) == 0:
        return -math.inf
    needed = max(1, math.ceil(min_tpr * len(positives) - 1e-9))
    return float(positives[needed - 1])


def calibrated_threshold(
    labels: np.ndarray, scores: np.ndarray, max_fpr: float, min_tpr: float | None = None
) -> float:
    """A threshold for probabilities that meets ``max_fpr`` on these samples and, where the samples
    allow it, keeps a margin towards unseen data.

    Where some thresholds meet both targets (false-positive rate <= ``max_fpr`` and true-positive rate
    >= ``min_tpr``), the result lies midway between the lowest and the highest of them in log-odds, so
    that a shift of either class on new episodes does not immediately break one target. Otherwise (or
    without ``min_tpr``) it is :func:`threshold_for_fpr`: the false-positive rate comes first.
    """
    low = threshold_for_fpr(labels, scores, max_fpr)
    if min_tpr is None or not math.isfinite(low):
        return low
    high = threshold_for_tpr(labels, scores, min_tpr)
    if not math.isfinite(high) or high <= low:
        return low
    eps = 1e-7
    lo, hi = (min(max(v, eps), 1 - eps) for v in (low, high))
    middle = (math.log(lo / (1 - lo)) + math.log(hi / (1 - hi))) / 2.0
    return float(1.0 / (1.0 + math.exp(-middle)))


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) at every distinct score, thresholds descending (for plots)."""
    y, s = _check(labels, scores)
    thresholds = np.unique(s)[::-1]
    n_pos, n_neg = max(int(y.sum()), 1), max(int((~y).sum()), 1)
    order = np.argsort(-s, kind="mergesort")
    s_sorted, y_sorted = s[order], y[order]
    # Number of samples with score >= each threshold.
    counts = np.searchsorted(-s_sorted, -thresholds, side="right")
    tp = np.r_[0, np.cumsum(y_sorted)][counts]
    fp = counts - tp
    return fp / n_neg, tp / n_pos, thresholds


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95 % (z = 1.96) Wilson score interval of a success rate; (0, 1) with no trials. The interval
    always contains the observed rate: at 0/n or n/n the floating-point bound (0.9999999999999999 for
    6/6) is the rate itself, so an error bar drawn from it is never negative."""
    if trials == 0:
        return 0.0, 1.0
    if not 0 <= successes <= trials:
        raise ValueError(f"successes must be in [0, trials], got {successes}/{trials}")
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))
