"""Pure functions over per-token negative log-likelihoods (nats). No model in here.

Each takes NumPy arrays so it can be tested on hand-computed numbers.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def cross_entropy(nll: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean negative log-likelihood over the tokens where ``mask`` is true (all when None).

    ``ce = sum(nll * mask) / sum(mask)``; NaN when no token is selected.

    >>> cross_entropy(np.array([1.0, 3.0]))
    2.0
    """
    nll = np.asarray(nll, dtype=np.float64)
    if mask is not None:
        nll = nll[np.asarray(mask, dtype=bool)]
    if nll.size == 0:
        return math.nan
    return float(nll.mean())


def perplexity(nll: np.ndarray, mask: np.ndarray | None = None) -> float:
    """``exp(cross_entropy(nll, mask))``; always >= 1 for non-negative NLLs.

    >>> round(perplexity(np.array([0.0, 2.0 * math.log(2.0)])), 6)
    2.0
    """
    return math.exp(cross_entropy(nll, mask))


def ifd(ppl_conditional: float, ppl_unconditional: float) -> float:
    """Instruction-following difficulty: ``PPL(response | prompt) / PPL(response)``.

    Li et al. 2024 (Cherry LLM, "From Quantity to Quality"); Superfiltering (Li et al. 2024).
    Above 1 the prompt makes the response *less* likely: prompt and response do not match.
    """
    return ppl_conditional / ppl_unconditional


def learning_percentage(p0, p1, pn):
    """Learning percentage ``LP = (P0 - P1) / (P0 - Pn)``, 0 where ``P0 == Pn``.

    Mekala, Nguyen & Shang 2024, "Smaller Language Models are capable of selecting
    Instruction-Tuning Training Data for Larger Language Models": the share of a record's total
    perplexity drop over ``n`` epochs of fine-tuning that happens in the first epoch. Low LP means
    the record is learned late: hard. Works on scalars or NumPy arrays (perplexities ``P_e`` after
    epoch ``e``; ``P0`` before training).

    >>> round(float(learning_percentage(8.0, 4.0, 2.0)), 6)
    0.666667
    """
    p0, p1, pn = (np.asarray(x, dtype=np.float64) for x in (p0, p1, pn))
    drop = p0 - pn
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(drop == 0, 0.0, (p0 - p1) / np.where(drop == 0, 1.0, drop))
    return out if out.ndim else float(out)


def learning_percentage_approx(p0, p1):
    """``LP_approx = (P0 - P1) / P0``: the first epoch's perplexity drop relative to the start;
    needs one epoch instead of ``n`` (Mekala et al. 2024). Low = hard.

    >>> learning_percentage_approx(8.0, 4.0)
    0.5
    """
    p0, p1 = np.asarray(p0, dtype=np.float64), np.asarray(p1, dtype=np.float64)
    out = (p0 - p1) / p0
    return out if out.ndim else float(out)


def lead_pmi(conditional: np.ndarray, unconditional: np.ndarray, k: int) -> float:
    """Pointwise mutual information of the prompt and the response's first ``k`` tokens, in nats:
    ``sum(unconditional[:k] - conditional[:k])``, how much more likely the prompt makes the
    opening of the response. 0 or below: the prompt does not help at all.

    The opening is where a response depends on its prompt most; over a whole long response the
    prompt's help is diluted (IFD near 1 for a matched pair), so the first tokens separate an
    answer to another question from a matched one more sharply.

    >>> lead_pmi(np.array([1.0, 2.0, 9.0]), np.array([3.0, 2.5, 0.0]), k=2)
    2.5
    """
    if k < 1:
        raise ValueError(f"lead_pmi k={k}: need at least one token")
    c = np.asarray(conditional, dtype=np.float64)[:k]
    u = np.asarray(unconditional, dtype=np.float64)[:k]
    if c.size == 0 or c.size != u.size:
        return math.nan
    return float((u - c).sum())


def robust_location_scale(values: np.ndarray) -> tuple[float, float]:
    """``(median, 1.4826 * MAD)`` of the finite values: a centre and a standard deviation that 20%
    of outliers barely move (1.4826 makes the MAD estimate the standard deviation of normal
    data). ``(nan, nan)`` without finite values; the scale is 0 when half the values are equal.

    >>> robust_location_scale(np.array([1.0, 2.0, 3.0, 4.0, 100.0]))
    (3.0, 1.4826)
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return math.nan, math.nan
    med = float(np.median(x))
    return med, 1.4826 * float(np.median(np.abs(x - med)))


def peak_window(nll: np.ndarray, width: int) -> float:
    """The largest mean over ``width`` consecutive values of ``nll``: the least likely stretch of
    a response. The mean of all values when there are ``width`` or fewer; NaN for none.

    A defect confined to a part of a response (a second answer appended, a leaked template line,
    garbled words) hardly moves the mean NLL of a long response, but it is the worst stretch.

    >>> peak_window(np.array([1.0, 1.0, 5.0, 3.0, 1.0]), 2)
    4.0
    """
    if width < 1:
        raise ValueError(f"peak_window width={width}: need at least one token")
    x = np.asarray(nll, dtype=np.float64)
    if x.size == 0:
        return math.nan
    if x.size <= width:
        return float(x.mean())
    sums = np.concatenate([[0.0], np.cumsum(x)])
    return float(((sums[width:] - sums[:-width]) / width).max())


def worst_share(nll: np.ndarray, share: float) -> float:
    """The mean of the largest ``ceil(share * n)`` of ``n`` values (at least one): the response's
    least likely tokens wherever they are. NaN for none.

    Scattered defects (typos, OCR errors, a wrong word here and there) raise a few tokens each,
    too few for the mean and too far apart for a window (:func:`peak_window`).

    >>> worst_share(np.array([1.0, 9.0, 2.0, 7.0, 1.0]), 0.4)
    8.0
    """
    if not 0 < share <= 1:
        raise ValueError(f"worst_share share={share}: must be in (0, 1]")
    x = np.asarray(nll, dtype=np.float64)
    if x.size == 0:
        return math.nan
    k = max(1, math.ceil(x.size * share - 1e-9))
    return float(np.sort(x)[-k:].mean())


def finite(value) -> bool:
    """A real number (not a bool), neither NaN nor infinite; False for None and anything else.

    >>> [finite(v) for v in (1, 2.5, float("nan"), float("inf"), None, True, "1")]
    [True, True, False, False, False, False, False]
    """
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
