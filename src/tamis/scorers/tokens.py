"""Token counts: ``prompt_tokens`` and ``response_tokens`` as rendered for the scorer model.

Counts come from the same encoding the runner scores (after any left truncation of the
prompt), so no text is tokenized twice and no forward pass is needed. Higher is better by
default (longer responses: the "longest" baseline of Zhao et al. 2024, "Long Is More for
Alignment"), though these are mostly filters (``--by response_tokens --min 5``).
"""

from __future__ import annotations

from tamis.scorers.base import Scorer, TokenNLL


def _tokens(t: TokenNLL) -> dict[str, float]:
    return {"prompt_tokens": t.n_prompt, "response_tokens": t.n_response}


TOKENS = Scorer("tokens", ("prompt_tokens", "response_tokens"), "higher", frozenset(), _tokens)
