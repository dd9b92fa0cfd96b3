"""``misspelt``: the share of a response's words that no English word list knows.

Keyboard slips and OCR errors (``teh``, ``recieve``, ``rn`` for ``m``) make words that no one
writes; a language model reads them as a few unlikely tokens among many likely ones, which its
average barely feels. A word list sees each of them. The list is wordfreq's large English list
(Speer 2022: 321,180 words seen in Wikipedia, subtitles, news, books, the web and social media;
the ``wordfreq`` package), taken whole: a word the web has written at all is a word.

Which words count: whitespace-separated tokens, stripped of surrounding punctuation and quotes,
that are lower-case ASCII letters only (an apostrophe inside is allowed, a possessive ``'s`` is
dropped) and at least :data:`MIN_LETTERS` letters long. Capitalised words (names, acronyms),
tokens with digits, dots or underscores (code, URLs) and lines inside a fenced code block are
left out. A word is misspelt when the list does not hold it and no prompt message uses it (a
term the prompt introduced is the user's word).

``misspelt`` = misspelt words / counted words (0 when no word counts). Above
:data:`FOREIGN_SHARE` it is None: most words are unknown, so the text is in another language (an
answer to "translate into Spanish") or is not words at all, and spelling is not what is wrong.
Lower = better. Cost: a set lookup per word (no model).

Known misses: a typo that makes another real word (``form`` for ``from``), typos in capitalised
words. Known false alarms: rare lower-case words the list lacks (species names, dishes, new
jargon); on the whole of Alpaca 52k and Dolly 15k see ``docs/guide.md#junk``.
"""

from __future__ import annotations

import functools
import re

from tamis.data.records import Record
from tamis.scorers.base import TextScorer
from tamis.scorers.residue import prompt_text

MIN_LETTERS = 3
FOREIGN_SHARE = 0.4  # typos touch a fifth of the words at most; past this, another language
_STRIP = "\"'`()[]{}<>.,;:!?*_~—–-…“”‘’«»"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """wordfreq's large English word list (loaded once per process, about 0.6 s)."""
    from wordfreq import get_frequency_dict

    return frozenset(get_frequency_dict("en", wordlist="large"))


def counted_words(text: str) -> list[str]:
    """The words of ``text`` that spelling is judged on (see the module's docstring)."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        for token in line.split():
            t = token.replace("’", "'").strip(_STRIP)
            t = t[:-2] if t.endswith("'s") else t
            if len(t) >= MIN_LETTERS and _WORD.fullmatch(t):
                out.append(t)
    return out


def misspelt_words(response: str, prompt: str) -> tuple[list[str], int]:
    """The response's misspelt words (in order, repeats kept) and the number of words counted."""
    words = counted_words(response)
    if not words:
        return [], 0
    known = english_words()
    asked = {t.replace("’", "'").strip(_STRIP).lower() for t in prompt.split()}
    bad = [w for w in words if w not in known and w not in asked]
    return bad, len(words)


def misspelt(response: str, prompt: str) -> float | None:
    """``misspelt`` of one response (None past :data:`FOREIGN_SHARE`: another language)."""
    bad, n = misspelt_words(response, prompt)
    share = len(bad) / n if n else 0.0
    return None if share > FOREIGN_SHARE else share


def _compute(records: list[Record]) -> dict[str, list[float | None]]:
    return {"misspelt": [misspelt(r.response, prompt_text(r)) for r in records]}


MISSPELT = TextScorer("misspelt", ("misspelt",), "lower", _compute)
