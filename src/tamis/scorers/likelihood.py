"""Likelihood of the response under the scorer model.

Columns ``ce``, ``ppl``, ``ce_uncond``, ``ppl_uncond`` and ``end_nll``.

``ce`` = mean over response tokens of -log p(token | prompt, earlier response tokens);
``ppl`` = exp(ce). The ``_uncond`` variants score the same tokens with no prompt.
Lower is better: records the small model finds very unlikely are poorly aligned with what it has
learned (noise, wrong answers, mismatched prompt and response) and are filtered first
(perplexity filtering as in Marion et al. 2023, "When Less is More"; the P0 of Mekala et al. 2024).

``end_nll`` is the NLL of the response's last token, the end of turn (``<|im_end|>`` or EOS,
which every template appends to the response): how surprised the model is that the response
stops there. A response cut off mid-sentence scores high; lower is better.
"""

from __future__ import annotations

import math

from tamis.maths import cross_entropy, perplexity
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


def _end_nll(t: TokenNLL) -> dict[str, float]:
    c = t.conditional
    return {"end_nll": float(c[-1]) if c is not None and len(c) else math.nan}


CE = Scorer("ce", ("ce",), "lower", COND, _ce)
PPL = Scorer("ppl", ("ppl",), "lower", COND, _ppl)
CE_UNCOND = Scorer("ce_uncond", ("ce_uncond",), "lower", UNCOND, _ce_uncond)
PPL_UNCOND = Scorer("ppl_uncond", ("ppl_uncond",), "lower", UNCOND, _ppl_uncond)
END_NLL = Scorer("end_nll", ("end_nll",), "lower", COND, _end_nll)
