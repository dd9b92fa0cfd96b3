"""Instruction-following difficulty, ``ifd = ppl / ppl_uncond``.

From Li et al. 2024, "From Quantity to Quality" (Cherry LLM), used with a small model by
Superfiltering (Li et al. 2024). It measures how much the prompt helps the model produce the
response. Higher is better (harder, more informative instructions are prioritised), but a value
above 1 means the prompt makes the response *less* likely, a sign that they do not belong
together; selection drops those by default (``--drop-ifd-above 1``).
"""

from __future__ import annotations

from tamis.maths import ifd, perplexity
from tamis.scorers.base import Scorer, TokenNLL


def _ifd(t: TokenNLL) -> dict[str, float]:
    return {"ifd": ifd(perplexity(t.conditional), perplexity(t.unconditional))}


IFD = Scorer("ifd", ("ifd",), "higher", frozenset({"conditional", "unconditional"}), _ifd)
