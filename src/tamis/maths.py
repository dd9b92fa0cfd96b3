"""Pure functions over per-token negative log-likelihoods (nats). No model in here.

Each takes NumPy arrays so it can be tested on hand-computed numbers.
"""

from __future__ import annotations

import math

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
