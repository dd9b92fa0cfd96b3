"""``dangling``: the response stops on a word that cannot end an English sentence.

A response cut off by a token limit, a length filter or a broken export stops wherever the cut
fell: often after ``the``, ``and`` or ``of``, with no full stop. A likelihood score sees a cut
only as one unexpected end (``junk``'s ``unfinished``), and a human-written answer that simply
lacks its full stop looks much the same to it; the last word tells them apart.

``dangling`` = 1.0 when the response (at least :data:`MIN_WORDS` words) ends in a letter, with no
punctuation, quote or bracket after its last word, and that word, as written (lower case: ``Will``
signing a letter and ``Let it Be`` are names), is one of :data:`DANGLING`: articles, possessive
determiners, coordinating and subordinating conjunctions, the commonest prepositions and
auxiliaries: words that introduce something and cannot close a sentence. Else 0.0. Lower =
better. Cost: a look at the last word (no model).

Known misses: a cut after a noun or a verb (most cuts); a cut followed by punctuation. Known false
alarms: a stranded preposition without a full stop (``goals to strive for``), a list whose last
item is such a word; replies under :data:`MIN_WORDS` words are never flagged (``an`` answering
"Which article goes before apple?"). On real data (Alpaca 52k and Dolly 15k outside the
benchmark samples) it flags under 0.1% of the records, most of them real cut-offs (``atomic
number of``, ``sales in 2015 will be``, ``1, 2, 4, 5, 10, and``).
"""

from __future__ import annotations

from tamis.data.records import Record
from tamis.scorers.base import TextScorer

MIN_WORDS = 4
DANGLING = frozenset(
    (
        "the", "a", "an",  # articles
        "my", "your", "his", "its", "our", "their",  # possessive determiners
        "and", "or", "but", "nor", "because", "although", "while", "if", "than", "that",
        "which", "whose",  # conjunctions and relatives
        "of", "to", "with", "from", "into", "onto", "for", "by", "at", "as",  # prepositions
        "is", "are", "was", "were", "be", "been", "has", "have", "had", "will", "would",
        "could", "should", "very", "such",  # auxiliaries, intensifiers
    )
)  # fmt: skip


def dangling(response: str) -> float:
    """``dangling`` of one response (see the module's docstring)."""
    text = response.rstrip()
    words = text.split()
    if len(words) < MIN_WORDS or not text[-1].isalpha():
        return 0.0
    return 1.0 if words[-1] in DANGLING else 0.0


def _compute(records: list[Record]) -> dict[str, list[float]]:
    return {"dangling": [dangling(r.response) for r in records]}


DANGLING_END = TextScorer("dangling", ("dangling",), "lower", _compute)
