"""Likelihood of the response under the scorer model.

Columns ``ce``, ``ppl``, ``ce_uncond``, ``ppl_uncond``, ``end_nll``, ``peak_nll`` and
``worst_nll``.

``ce`` = mean over response tokens of -log p(token | prompt, earlier response tokens);
``ppl`` = exp(ce). The ``_uncond`` variants score the same tokens with no prompt.
Lower is better: records the small model finds very unlikely are poorly aligned with what it has
learned (noise, wrong answers, mismatched prompt and response) and are filtered first
(perplexity filtering as in Marion et al. 2023, "When Less is More"; the P0 of Mekala et al. 2024).

``end_nll`` is the NLL of the response's last token, the end of turn (``<|im_end|>`` or EOS,
which every template appends to the response): how surprised the model is that the response
stops there. A response cut off mid-sentence scores high; lower is better.

``peak_nll`` is the mean NLL of the response's least likely stretch of :data:`PEAK_TOKENS`
tokens, the end token left out (:func:`tamis.base.maths.peak_window`): a defect in one part of a
long response (a second answer appended, a leaked template line, typos) shows there, not in ``ce``.
Lower is better.

``worst_nll`` is the mean NLL of the response's least likely :data:`WORST_SHARE` of its tokens,
wherever they are, the end token left out (:func:`tamis.base.maths.worst_share`): scattered defects
(typos, OCR errors, wrong words) raise a few tokens each, too far apart for ``peak_nll``'s window.
Lower is better.
"""

from __future__ import annotations

import math

from tamis.base.maths import cross_entropy, peak_window, perplexity, worst_share
from tamis.scorers.base import Scorer, TokenNLL

COND = frozenset({"conditional"})
UNCOND = frozenset({"unconditional"})


def _ce(t: TokenNLL) -> dict[str, float]:
    return {"ce": cross_entropy(t.conditional)}


def _ppl(t: TokenNLL) -> dict[str, float]:
    return {"ppl": perplexity(t.conditional)}


def _ce_uncond(t: TokenNLL) -> dict[str, float]:
    return {"ce_uncond": cross_entropy(t.unconditional)}


def _ppl_uncond(t: TokenNLL) -> dict[str, float]:
    return {"ppl_uncond": perplexity(t.unconditional)}


PEAK_TOKENS = 8


def _peak_nll(t: TokenNLL) -> dict[str, float]:
    body = _body(t)
    return {"peak_nll": peak_window(body, PEAK_TOKENS) if body is not None else math.nan}


WORST_SHARE = 0.1


def _body(t: TokenNLL):
    """The conditional NLLs without the end token (all of them for a one-token response)."""
    c = t.conditional
    return c[:-1] if c is not None and len(c) > 1 else c


def _worst_nll(t: TokenNLL) -> dict[str, float]:
    body = _body(t)
    return {"worst_nll": worst_share(body, WORST_SHARE) if body is not None else math.nan}


def _end_nll(t: TokenNLL) -> dict[str, float]:
    c = t.conditional
    return {"end_nll": float(c[-1]) if c is not None and len(c) else math.nan}


CE = Scorer("ce", ("ce",), "lower", COND, _ce)
PPL = Scorer("ppl", ("ppl",), "lower", COND, _ppl)
CE_UNCOND = Scorer("ce_uncond", ("ce_uncond",), "lower", UNCOND, _ce_uncond)
PPL_UNCOND = Scorer("ppl_uncond", ("ppl_uncond",), "lower", UNCOND, _ppl_uncond)
END_NLL = Scorer("end_nll", ("end_nll",), "lower", COND, _end_nll)
PEAK_NLL = Scorer("peak_nll", ("peak_nll",), "lower", COND, _peak_nll)
WORST_NLL = Scorer("worst_nll", ("worst_nll",), "lower", COND, _worst_nll)
