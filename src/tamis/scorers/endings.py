"""``dangling``: the response stops on a word that cannot end an English sentence.

A response cut off by a token limit, a length filter or a broken export stops wherever the cut
fell: often after ``the``, ``and`` or ``of``, with no full stop. A likelihood score sees a cut
only as one unexpected end (``junk``'s ``unfinished``), and a human-written answer that simply
lacks its full stop looks much the same to it; the last word tells them apart.

``dangling`` = 1.0 when the response (at least :data:`MIN_WORDS` words) ends in a letter, with no
punctuation, quote or bracket after its last word, and that word, as written (lower case: ``Will``
signing a letter is a name), is one of :data:`DANGLING`: an article, a possessive determiner,
``and``, ``or``, ``nor``, ``because``, ``although``, ``whose``, ``than``, ``of`` or ``very``:
words that open something and (almost) never close a sentence. Not when the prompt is about
words themselves (it names an article, a preposition, a conjunction, a determiner, a pronoun, a
word, a rhyme, grammar or a part of speech). Else 0.0. Lower = better. Cost: a look at the last
word (no model).

Known misses: a cut after a noun, a verb or a word that can end a sentence (``to``, ``for``,
``with``: ``goals to strive for``), most cuts; a cut followed by punctuation. Known false alarms:
a stranded ``of`` (``what it is made of``) or a list whose last item is such a word. Replies
under :data:`MIN_WORDS` words are never flagged. Counts on real data:
``benchmarks/text_flags_real.py``.
"""

from __future__ import annotations

import re

from tamis.data.records import Record
from tamis.scorers.base import TextScorer
from tamis.scorers.residue import prompt_text

MIN_WORDS = 4
DANGLING = frozenset(
    (
        "the", "a", "an",  # articles
        "my", "your", "our", "their", "its",  # possessive determiners (not his, her: pronouns too)
        "and", "or", "nor", "because", "although", "whose", "than", "of", "very",
    )
)  # fmt: skip
# A prompt about words themselves: the answer may well end on one ("The article here is the").
_ABOUT_WORDS = re.compile(
    r"\b(article|preposition|conjunction|determiner|pronoun|word|rhyme|grammar|part of speech)",
    re.IGNORECASE,
)


def dangling(response: str, prompt: str = "") -> float:
    """``dangling`` of one response (see the module's docstring)."""
    text = response.rstrip()
    words = text.split()
    if len(words) < MIN_WORDS or not text[-1].isalpha() or _ABOUT_WORDS.search(prompt):
        return 0.0
    return 1.0 if words[-1] in DANGLING else 0.0


def _compute(records: list[Record]) -> dict[str, list[float]]:
    return {"dangling": [dangling(r.response, prompt_text(r)) for r in records]}


DANGLING_END = TextScorer("dangling", ("dangling",), "lower", _compute)
