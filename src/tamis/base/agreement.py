"""How well two scores of the same records agree: rank correlations and top-k% overlap.

Pure functions over plain sequences (no files, no models), used by ``tamis transfer`` to ask
whether a small model's ranking of the data carries over to a larger model.

- Spearman's rho and Kendall's tau-b (``scipy.stats``), each with its two-sided p-value.
- Top-k% overlap: the Jaccard index |A ∩ B| / |A ∪ B| of the two top-k% sets, "top" meaning the
  *better* end of the score (``direction="lower"``: the lowest values, as for perplexity), ties
  broken by id so the sets are deterministic.
- The Jaccard expected by chance for two random sets of the same size, f / (2 - f) where f is the
  fraction kept: E|A ∩ B| = f² n and E|A ∪ B| = (2f - f²) n.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

DIRECTION_CHOICES = ("lower", "higher")


@dataclass(frozen=True)
class Correlation:
    """A correlation coefficient and its two-sided p-value (NaN when a score is constant)."""

    statistic: float
    pvalue: float


@dataclass(frozen=True)
class TopOverlap:
    """Overlap of the two top-``percent``% sets, each of ``size`` records."""

    percent: float
    size: int
    shared: int
    jaccard: float
    chance: float


@dataclass(frozen=True)
class Agreement:
    n: int
    direction: str
    spearman: Correlation
    kendall: Correlation
    top: tuple[TopOverlap, ...]


@dataclass(frozen=True)
class Joined:
    """Rows present in both inputs, in the order of A; ``unmatched_*``: ids found on one side
    only."""

    ids: list[str]
    a: np.ndarray
    b: np.ndarray
    unmatched_a: int
    unmatched_b: int


def join_on_id(
    ids_a: Sequence[str], a: Sequence[float], ids_b: Sequence[str], b: Sequence[float]
) -> Joined:
    """Inner join of two (id, value) columns on id; ids must be unique on each side.

    >>> j = join_on_id(["x", "y", "z"], [1.0, 2.0, 3.0], ["z", "x", "w"], [30.0, 10.0, 0.0])
    >>> j.ids, j.a.tolist(), j.b.tolist(), j.unmatched_a, j.unmatched_b
    (['x', 'z'], [1.0, 3.0], [10.0, 30.0], 1, 1)
    """
    if len(ids_a) != len(a) or len(ids_b) != len(b):
        raise ValueError("join_on_id: each ids list must be as long as its values")
    where_b = {key: i for i, key in enumerate(ids_b)}
    if len(where_b) != len(ids_b) or len(set(ids_a)) != len(ids_a):
        raise ValueError("join_on_id: ids must be unique on each side")
    pairs = [(i, where_b[key]) for i, key in enumerate(ids_a) if key in where_b]
    ia = np.array([p[0] for p in pairs], dtype=np.int64)
    ib = np.array([p[1] for p in pairs], dtype=np.int64)
    return Joined(
        ids=[ids_a[i] for i in ia],
        a=np.asarray(a, dtype=np.float64)[ia],
        b=np.asarray(b, dtype=np.float64)[ib],
        unmatched_a=len(ids_a) - len(pairs),
        unmatched_b=len(ids_b) - len(pairs),
    )


def _pair(a: Sequence[float], b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"two scores of the same records are needed; got {x.shape}, {y.shape}")
    if len(x) < 3:
        raise ValueError(f"at least 3 records are needed for a correlation; got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("scores must be finite; drop NaN and infinite values first")
    return x, y


def _correlation(fn, x: np.ndarray, y: np.ndarray) -> Correlation:
    # A constant score has no ranking: scipy warns and returns NaN, which is the honest answer.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fn(x, y)
    return Correlation(float(result.statistic), float(result.pvalue))


def spearman(a: Sequence[float], b: Sequence[float]) -> Correlation:
    """Spearman's rho: the Pearson correlation of the ranks (ties get their mean rank).

    >>> round(spearman([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]).statistic, 12)  # 1 - 6·4 / (5·24)
    0.8
    """
    from scipy import stats

    return _correlation(stats.spearmanr, *_pair(a, b))


def kendall(a: Sequence[float], b: Sequence[float]) -> Correlation:
    """Kendall's tau-b: (concordant - discordant) pairs, corrected for ties.

    >>> round(kendall([1, 2, 3, 4, 5], [2, 1, 4, 3, 5]).statistic, 12)  # (8 - 2) / 10
    0.6
    """
    from scipy import stats

    return _correlation(stats.kendalltau, *_pair(a, b))


def top_size(n: int, percent: float) -> int:
    """Records in a top-``percent``% set of ``n``: rounded down, at least one.

    >>> top_size(52002, 5), top_size(10, 5)
    (2600, 1)
    """
    if not 0 < percent <= 100:
        raise ValueError(f"percent {percent} is outside (0, 100]; give e.g. 5, 10, 20 or 50")
    return max(1, math.floor(round(n * percent / 100, 9)))


def ranking(values: Sequence[float], ids: Sequence[str], direction: str) -> list[int]:
    """Indices from best to worst: ascending values for ``lower``, descending for ``higher``;
    equal values in id order."""
    if direction not in DIRECTION_CHOICES:
        raise ValueError(f"direction '{direction}'; choose one of: {', '.join(DIRECTION_CHOICES)}")
    if len(values) != len(ids):
        raise ValueError("ranking: values and ids must have the same length")
    sign = 1.0 if direction == "lower" else -1.0
    return sorted(range(len(ids)), key=lambda i: (sign * float(values[i]), ids[i]))


def chance_jaccard(fraction: float) -> float:
    """Jaccard of two random sets, each a ``fraction`` of the records: f / (2 - f).

    >>> chance_jaccard(0.5), chance_jaccard(1.0)
    (0.3333333333333333, 1.0)
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction {fraction} is outside (0, 1]")
    return fraction / (2 - fraction)


def top_overlap(
    a: Sequence[float],
    b: Sequence[float],
    ids: Sequence[str],
    percents: Sequence[float],
    direction: str,
) -> tuple[TopOverlap, ...]:
    """Jaccard of the top-k% sets of ``a`` and ``b`` for each k in ``percents``."""
    if not len(a) == len(b) == len(ids):
        raise ValueError("top_overlap: a, b and ids must have the same length")
    order_a = ranking(a, ids, direction)
    order_b = ranking(b, ids, direction)
    n = len(ids)
    out = []
    for percent in percents:
        size = top_size(n, percent)
        shared = len(set(order_a[:size]) & set(order_b[:size]))
        jaccard = shared / (2 * size - shared)
        out.append(TopOverlap(float(percent), size, shared, jaccard, chance_jaccard(size / n)))
    return tuple(out)


def agreement(
    a: Sequence[float],
    b: Sequence[float],
    ids: Sequence[str],
    percents: Sequence[float] = (5, 10, 20, 50),
    direction: str = "higher",
) -> Agreement:
    """Every agreement number for two finite scores of the same records (at least 3)."""
    x, y = _pair(a, b)
    if len(ids) != len(x):
        raise ValueError(f"{len(ids)} ids for {len(x)} records")
    return Agreement(
        n=len(x),
        direction=direction,
        spearman=spearman(x, y),
        kendall=kendall(x, y),
        top=top_overlap(x, y, list(ids), percents, direction),
    )
