"""Likelihood of the response under the scorer model.

Columns ``ce``, ``ppl``, ``ce_uncond`` and ``ppl_uncond``.

``ce`` = mean over response tokens of -log p(token | prompt, earlier response tokens);
``ppl`` = exp(ce). The ``_uncond`` variants score the same tokens with no prompt.
Lower is better: records the small model finds very unlikely are poorly aligned with what it has
learned (noise, wrong answers, mismatched prompt and response) and are filtered first
(perplexity filtering as in Marion et al. 2023, "When Less is More"; the P0 of Mekala et al. 2024).
"""

from __future__ import annotations

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


CE = Scorer("ce", ("ce",), "lower", COND, _ce)
PPL = Scorer("ppl", ("ppl",), "lower", COND, _ppl)
CE_UNCOND = Scorer("ce_uncond", ("ce_uncond",), "lower", UNCOND, _ce_uncond)
PPL_UNCOND = Scorer("ppl_uncond", ("ppl_uncond",), "lower", UNCOND, _ppl_uncond)
