"""``loop_copies``: how many times, back to back, the response repeats one phrase.

Greedy decoding that falls into a loop writes the same words again and again until the token
limit: ``... are up to date. are up to date. are up to date.`` When the loop takes only the end
of a long response, the duplicate n-gram share (``repetition``, cut at 0.6) stays low: a third
of the response looping is 0.3. What a loop has that ordinary text has not is *adjacency*: the
same phrase four times in a row, with nothing between the copies.

``loop_copies`` is the largest ``c`` such that some phrase of :data:`MIN_UNIT_WORDS` (2) to
:data:`MAX_UNIT_WORDS` words occurs ``c`` times back to back in the response's words
(:func:`tamis.scorers.heuristics.words`: case and punctuation ignored, lines inside a fenced
code block left out), counting only phrases with a word of 3 letters or more (so ``la la la
la``, ``2 x 2 x 2`` or ``1, 0, 0, 0`` do not count); 1 when no phrase repeats. Not counted
either when every such word of the phrase is in the prompt (a list of the prompt's labels,
``odd, even, odd, even``) or the prompt asks for a song, a chant or repetition (a chorus).
Junk's ``looping`` fires at 4 copies (:data:`tamis.scorers.junk.LOOP_COPIES`): greedy loops run
to many copies, human text almost never has four in a row. Lower = better.
Cost: one vectorised comparison of the words with themselves per phrase length (no model).

Known misses: a loop whose copies vary (a counter that goes up, ``step 1, step 2``), a loop of
fewer than four copies (``repetition`` sees long ones). Known false alarms: code outside a fenced
block that repeats a line four times (four equal layers of a network). Counts on real data:
``benchmarks/text_flags_real.py``.
"""

from __future__ import annotations

import re

import numpy as np

from tamis.data.records import Record
from tamis.scorers.base import TextScorer
from tamis.scorers.heuristics import words
from tamis.scorers.residue import prompt_text
from tamis.scorers.spelling import prose_lines

MIN_UNIT_WORDS = 2  # a one-word unit is "very very" or "la la": rhetoric or song
MAX_UNIT_WORDS = 64
# A prompt that asks for repeated words: a song's chorus, a chant, "repeat ... five times".
_ASKS_REPEATS = re.compile(
    r"\b(song|lyric|chorus|chant|carol|anthem|rap|jingle|repeat|repetition|times)\b", re.IGNORECASE
)


def loop_copies(response: str, prompt: str = "") -> float:
    """``loop_copies`` of one response (see the module's docstring)."""
    w = words("\n".join(prose_lines(response)))
    if len(w) < 2 * MIN_UNIT_WORDS or _ASKS_REPEATS.search(prompt):
        return 1.0
    asked = set(words(prompt))
    ids: dict[str, int] = {}
    a = np.array([ids.setdefault(x, len(ids)) for x in w])
    best = 1
    for k in range(MIN_UNIT_WORDS, min(MAX_UNIT_WORDS, len(w) // 2) + 1):
        if len(w) // k <= best:
            break  # no unit this long, or longer, fits more copies than found
        same = np.concatenate(([False], a[:-k] == a[k:], [False]))
        edges = np.flatnonzero(np.diff(same.astype(np.int8)))
        for start, end in zip(edges[::2], edges[1::2], strict=True):
            copies = 1 + (end - start) // k
            if copies <= best:
                continue
            unit = w[start : start + k]
            if any(len(x) >= 3 and x.isalpha() and x not in asked for x in unit):
                best = copies
    return float(best)


def _compute(records: list[Record]) -> dict[str, list[float]]:
    return {"loop_copies": [loop_copies(r.response, prompt_text(r)) for r in records]}


LOOPING = TextScorer("loop_copies", ("loop_copies",), "lower", _compute)
