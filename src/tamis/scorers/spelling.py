"""``misspelt``: the share of a response's words that no English word list knows.

Keyboard slips and OCR errors (``wtaer``, ``cluods``, ``rn`` read for ``m``) make strings that
no one writes; a language model reads them as a few unlikely tokens among many likely ones,
which its average barely feels. A word list sees each of them. The list is wordfreq's large
English list (Speer 2022: 321,180 words seen in Wikipedia, subtitles, news, books, the web and
social media; the ``wordfreq`` package), taken whole: a word the web has written at all is a
word. So the commonest misspellings, which the web writes often enough (``teh``, ``recieve``,
``definately``), count as words: the signal sees fresh slips, not habitual ones.

Which words count: whitespace-separated tokens, stripped of surrounding punctuation and quotes,
that are lower-case ASCII letters only (an apostrophe inside is allowed, a possessive ``'s`` is
dropped) and at least :data:`MIN_LETTERS` letters long. Capitalised words (names, acronyms),
tokens with digits, dots or underscores (code, URLs), inline ``code`` in backticks and the
lines of a fenced code block are left out. A word is misspelt when the list does not hold it
and no prompt message uses it, alone or with a plural ``s`` (a term the prompt introduced is the
user's word; the prompt's words are split at hyphens and slashes too).

``misspelt`` = misspelt words / counted words (0 when no word counts). It is None when more than
:data:`FOREIGN_SHARE` of the words are unknown and none of them is one of :data:`ENGLISH`'s
commonest English words: the text is in another language (an answer to "translate into
Spanish") and spelling is not what is wrong. Lower = better. As a filter column
(``--filter``, ``--by``) None reads as "no value", so such records fall out of a filter on it;
``junk`` ignores it. Cost: a set lookup per word (no model).

Known misses: a typo that makes another real word (``form`` for ``from``), typos in capitalised
words. Known false alarms: rare lower-case words the list lacks (species names, dishes, new
jargon); counts on the whole of Alpaca 52k and Dolly 15k: ``benchmarks/text_flags_real.py``.
"""

from __future__ import annotations

import functools
import re

from tamis.base.errors import TamisError
from tamis.data.records import Record
from tamis.scorers.base import TextScorer
from tamis.scorers.residue import prompt_text

MIN_LETTERS = 3
FOREIGN_SHARE = 0.4  # typos touch a fifth of the words at most; past this, maybe another language
# The commonest English words of 3+ letters: one of them among the counted words says English.
ENGLISH = frozenset(
    (
        "the", "and", "for", "are", "but", "not", "you", "all", "any", "can", "had", "her", "was",
        "one", "our", "out", "has", "his", "how", "its", "may", "new", "now", "see", "two", "who",
        "did", "get", "him", "let", "say", "she", "too", "use", "that", "with", "have", "this",
        "will", "your", "from", "they", "been", "more", "when", "what", "were", "there", "their",
        "which", "would", "about", "into", "than", "them", "then", "some", "these",
    )
)  # fmt: skip
_STRIP = "\"'()[]{}<>.,;:!?*_~—–-…“”‘’«»"
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """wordfreq's large English word list (loaded once per process, about 0.6 s)."""
    try:
        from wordfreq import get_frequency_dict
    except ImportError:
        raise TamisError(
            "the misspelt scorer (part of junk) needs wordfreq; pip install wordfreq, or "
            "reinstall tamis"
        ) from None
    return frozenset(get_frequency_dict("en", wordlist="large"))


def _normal(token: str) -> str:
    t = token.replace("’", "'").strip(_STRIP)
    return t[:-2] if t.endswith("'s") else t


def prose_lines(text: str) -> list[str]:
    """The lines of ``text`` outside fenced code blocks (the fence lines left out too; a
    ```one-liner``` is a line of code, not a fence)."""
    out: list[str] = []
    fenced = False
    for line in text.splitlines():
        bare = line.strip()
        if bare.startswith("```"):
            if bare.count("```") == 1:  # an opening or closing fence
                fenced = not fenced
            continue
        if not fenced:
            out.append(line)
    return out


def counted_words(text: str) -> list[str]:
    """The words of ``text`` that spelling is judged on (see the module's docstring)."""
    out: list[str] = []
    for line in prose_lines(text):
        for token in line.split():
            if "`" in token:  # inline code
                continue
            t = _normal(token)
            if len(t) >= MIN_LETTERS and _WORD.fullmatch(t):
                out.append(t)
    return out


def _asked(prompt: str) -> set[str]:
    """The prompt's words, lower-cased and normalised like the response's, split at - and /."""
    return {_normal(t).lower() for t in re.split(r"[\s/\-]+", prompt) if t}


def misspelt_words(response: str, prompt: str) -> tuple[list[str], int]:
    """The response's misspelt words (in order, repeats kept) and the number of words counted."""
    words = counted_words(response)
    return _unknown(words, prompt), len(words)


def _unknown(words: list[str], prompt: str) -> list[str]:
    """The ``words`` neither the list nor the prompt holds (alone or with a plural ``s``)."""
    if not words:
        return []
    known = english_words()
    asked = _asked(prompt)
    return [w for w in words if w not in known and not {w, w + "s", w.removesuffix("s")} & asked]


def misspelt(response: str, prompt: str) -> float | None:
    """``misspelt`` of one response (None: another language, see the module's docstring)."""
    words = counted_words(response)
    share = len(_unknown(words, prompt)) / len(words) if words else 0.0
    if share > FOREIGN_SHARE and not ENGLISH & set(words):
        return None
    return share


def _compute(records: list[Record]) -> dict[str, list[float | None]]:
    return {"misspelt": [misspelt(r.response, prompt_text(r)) for r in records]}


MISSPELT = TextScorer("misspelt", ("misspelt",), "lower", _compute)
