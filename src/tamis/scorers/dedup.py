"""Duplicates: ``dup_exact`` and ``dup_near``, flags that keep the first record of each group.

Both are 1.0 for a record that duplicates an *earlier* record and 0.0 otherwise (lower is better),
so ``--filter dup_exact==0`` or ``--filter dup_near==0`` keeps one record of each group: the first
in input order. Both depend on nothing but the records and their order (no randomness, no state).
``dup_exact_of`` and ``dup_near_of`` name the earlier record each duplicate repeats (its id; None
for a first occurrence), and a record the filter drops says so in its detail.

- ``dup_exact``: the record's normalised prompt and response equal those of an earlier record.
  Normalised with :func:`~tamis.scorers.heuristics.normalize` (NFKC, casefold, whitespace runs as
  one space); the prompt is every message as (role, normalised content).
- ``dup_near``: near duplicates by MinHash LSH (Broder 1997; the ``datasketch`` library): see
  :func:`near_duplicate_flags`. An exact duplicate is a near duplicate too.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

from tamis.base.errors import TamisError
from tamis.data.records import Record
from tamis.scorers.base import TextScorer
from tamis.scorers.heuristics import normalize, words

NEAR_THRESHOLD = 0.8
NEAR_NUM_PERM = 128
NEAR_NGRAM = 5
NEAR_SEED = 1


def duplicate_flags(keys: Sequence[Hashable]) -> list[float]:
    """1.0 where ``keys[i]`` equals an earlier key, 0.0 at the first occurrence of each.

    ``sum(duplicate_flags(keys)) == len(keys) - len(set(keys))``.

    >>> duplicate_flags(["a", "b", "a", "a"])
    [0.0, 0.0, 1.0, 1.0]
    """
    return [0.0 if first is None else 1.0 for first in duplicate_of(keys)]


def duplicate_of(keys: Sequence[Hashable]) -> list[int | None]:
    """For each key, the position of its first occurrence when that is earlier, else None.

    >>> duplicate_of(["a", "b", "a", "a"])
    [None, None, 0, 0]
    """
    first: dict[Hashable, int] = {}
    out = []
    for i, key in enumerate(keys):
        out.append(first.get(key))
        first.setdefault(key, i)
    return out


def shingles(text: str, n: int = NEAR_NGRAM) -> set[str]:
    """The word n-grams of ``text`` (:func:`~tamis.scorers.heuristics.words`), each joined by
    spaces; a text of fewer than ``n`` words is one shingle of all its words, and a text without
    words one shingle of its normalised self, so no text has an empty set.

    >>> sorted(shingles("A b, c d", n=3))
    ['a b c', 'b c d']
    """
    w = words(text)
    if len(w) >= n:
        return {" ".join(w[i : i + n]) for i in range(len(w) - n + 1)}
    return {" ".join(w)} if w else {normalize(text)}


def near_duplicate_flags(pairs: Sequence[tuple[str, str]], **options) -> list[float]:
    """1.0 for each pair :func:`near_duplicate_of` finds a near duplicate of, else 0.0."""
    return [0.0 if j is None else 1.0 for j in near_duplicate_of(pairs, **options)]


def near_duplicate_of(
    pairs: Sequence[tuple[str, str]],
    threshold: float = NEAR_THRESHOLD,
    num_perm: int = NEAR_NUM_PERM,
    ngram: int = NEAR_NGRAM,
    seed: int = NEAR_SEED,
) -> list[int | None]:
    """For each (prompt, response) pair, the position of the earliest *kept* pair it
    near-duplicates, or None (the pair is kept).

    Two pairs are near duplicates when the Jaccard similarity of their prompts' word ``ngram``-gram
    sets (:func:`shingles`) and that of their responses' are *both* at least ``threshold``, as
    estimated by MinHash with ``num_perm`` permutations and ``seed``. Both, because one alone is
    not a duplicate: many Dolly records share a long reference passage and ask different questions
    about it, and thousands of classification records share the one-word answer ``positive``.

    Greedy, in input order: pair ``i`` is flagged when it is a near duplicate of an earlier pair
    that was not itself flagged; otherwise it is kept and later pairs are compared with it. So the
    kept pairs are pairwise distinct, each flagged pair resembles a kept one, and a group of
    mutual near duplicates keeps exactly one (the first), whatever the order. Candidates come from
    a MinHash LSH index over the union of both shingle sets (its similarity is at least the smaller
    of the two, so no pair passing both tests is missed beyond LSH's own small miss rate near the
    threshold), then both estimates are checked. Defaults: word 5-grams, threshold 0.8 (as in Lee
    et al. 2022, "Deduplicating Training Data Makes Language Models Better"), 128 permutations,
    seed 1. Replacing one word changes 5 shingles, so a text of n >= 9 words with one word replaced
    has Jaccard ``(n - 9) / (n + 1)``: 0.8 needs n >= 49. Short texts must thus match word for word
    (case, whitespace and punctuation aside), which is right for them: "Name three fruits" and
    "Name three birds" are different tasks. Needs ``datasketch``.
    """
    if not 0 < threshold < 1:
        raise TamisError(
            f"near-duplicate threshold={threshold}: give a Jaccard similarity in (0, 1)"
        )
    if num_perm < 16 or ngram < 1:
        raise TamisError(f"num_perm={num_perm}, ngram={ngram}: need num_perm >= 16 and ngram >= 1")
    try:
        from datasketch import MinHash, MinHashLSH
    except ImportError:
        raise TamisError(
            "the dup_near scorer needs datasketch; pip install datasketch (or drop dup_near)"
        ) from None
    # Prompt and response shingles are tagged so that their union is a disjoint union.
    prompt_sets = [[b"p " + s.encode() for s in sorted(shingles(p, ngram))] for p, _ in pairs]
    response_sets = [[b"r " + s.encode() for s in sorted(shingles(r, ngram))] for _, r in pairs]
    prompts = MinHash.bulk(prompt_sets, num_perm=num_perm, seed=seed)
    responses = MinHash.bulk(response_sets, num_perm=num_perm, seed=seed)
    lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
    found: list[int | None] = []
    for i, (p, r) in enumerate(zip(prompts, responses, strict=True)):
        both = MinHash.union(p, r)
        matches = [
            j
            for j in lsh.query(both)
            if p.jaccard(prompts[j]) >= threshold and r.jaccard(responses[j]) >= threshold
        ]
        if not matches:
            lsh.insert(i, both)
        found.append(min(matches) if matches else None)
    return found


def record_text(rec: Record) -> tuple[str, str]:
    """``(prompt, response)`` as text: the prompt's messages as ``role: content``, one per
    paragraph, so a role change is part of the text."""
    return "\n\n".join(f"{m.role}: {m.content}" for m in rec.prompt), rec.response


def exact_key(rec: Record) -> tuple:
    """What two exact duplicates share: each prompt message as (role, normalised content), and the
    normalised response."""
    return tuple((m.role, normalize(m.content)) for m in rec.prompt), normalize(rec.response)


def _dup_exact_all(records: list[Record]) -> dict[str, list]:
    return _with_ids("dup_exact", duplicate_of([exact_key(r) for r in records]), records)


def _dup_near_all(records: list[Record]) -> dict[str, list]:
    return _with_ids("dup_near", near_duplicate_of([record_text(r) for r in records]), records)


def _with_ids(column: str, of: list[int | None], records: list[Record]) -> dict[str, list]:
    """The flag column, and ``COLUMN_of``: the id of the record each duplicate repeats."""
    return {
        column: [0.0 if j is None else 1.0 for j in of],
        f"{column}_of": [None if j is None else records[j].id for j in of],
    }


DUP_EXACT = TextScorer("dup_exact", ("dup_exact",), "lower", _dup_exact_all)
DUP_NEAR = TextScorer("dup_near", ("dup_near",), "lower", _dup_near_all)
DEDUP_SCORERS = (DUP_EXACT, DUP_NEAR)
