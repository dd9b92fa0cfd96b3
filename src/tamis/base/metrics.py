"""Reference-based metrics for generated answers: ROUGE-L and exact match. Pure functions.

- ROUGE-L (Lin 2004): the longest common subsequence of the two word sequences, as an F1 of
  its precision (over the candidate) and recall (over the reference). Words are lower-cased
  runs of letters and digits, so punctuation and case do not count.
- Exact match, SQuAD-style normalisation: lower case, punctuation and the articles a/an/the
  removed, whitespace collapsed. Meant for short answers (a few words).
"""

from __future__ import annotations

import re
import string

_WORD = re.compile(r"\w+", re.UNICODE)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence (O(len(a) * len(b)) time, O(len(b)) memory)."""
    if not a or not b:
        return 0
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def rouge_l(candidate: str, reference: str) -> float:
    """ROUGE-L F1 in [0, 1]; 0 when either has no words.

    >>> round(rouge_l("the cat sat on the mat", "the cat is on the mat"), 4)
    0.8333
    """
    c, r = words(candidate), words(reference)
    lcs = lcs_length(c, r)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(c), lcs / len(r)
    return 2 * precision * recall / (precision + recall)


def normalise_answer(text: str) -> str:
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation)
    return " ".join(_ARTICLES.sub(" ", text).split())


def exact_match(candidate: str, reference: str) -> bool:
    """Equal after SQuAD normalisation.

    >>> exact_match("The Eiffel Tower.", "eiffel tower")
    True
    """
    return normalise_answer(candidate) == normalise_answer(reference)
