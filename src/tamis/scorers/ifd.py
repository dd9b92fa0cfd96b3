"""Instruction-following difficulty, ``ifd = ppl / ppl_uncond``.

From Li et al. 2024, "From Quantity to Quality" (Cherry LLM), used with a small model by
Superfiltering (Li et al. 2024). It measures how much the prompt helps the model produce the
response. Higher is better (harder, more informative instructions are prioritised), but a value
above 1 means the prompt makes the response *less* likely, a sign that they do not belong
together; selection drops those by default (``--drop-ifd-above 1``).

``lead_pmi`` reads the same two passes at the response's opening only (see
:func:`tamis.base.maths.lead_pmi`); the junk score uses it to find answers to another question.
"""

from __future__ import annotations

from tamis.base.maths import ifd, lead_pmi, perplexity
from tamis.scorers.base import Scorer, TokenNLL

# Response tokens whose prompt information ``lead_pmi`` sums: about a sentence's opening.
LEAD_TOKENS = 16
BOTH = frozenset({"conditional", "unconditional"})


def _ifd(t: TokenNLL) -> dict[str, float]:
    return {"ifd": ifd(perplexity(t.conditional), perplexity(t.unconditional))}


def _lead_pmi(t: TokenNLL) -> dict[str, float]:
    return {"lead_pmi": lead_pmi(t.conditional, t.unconditional, LEAD_TOKENS)}


IFD = Scorer("ifd", ("ifd",), "higher", BOTH, _ifd)
# ``lead_pmi``: nats of information the prompt gives about the response's first LEAD_TOKENS
# tokens (tamis.base.maths.lead_pmi); higher is better, 0 or below means the prompt does not help.
# From the same two passes as ``ifd``: no extra forward pass.
LEAD_PMI = Scorer("lead_pmi", ("lead_pmi",), "higher", BOTH, _lead_pmi)
