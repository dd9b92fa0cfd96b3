"""Inject labelled noise into a dataset: corrupt a seeded share of the responses, say which.

Works on the raw JSON objects of a file (Alpaca ``instruction``/``input``/``output``, Dolly
``instruction``/``context``/``response``, ``prompt``/``response`` or ``completion``), so the
corrupted file is read by tamis exactly like the clean one. Pure Python, no model; the same
``seed`` gives the same output byte for byte.

Corruptions (:data:`KINDS`; the names are stable labels):

- ``swap``: the response is replaced by the (original) response of another record whose response
  differs; one-directional, the other record is not changed by it.
- ``truncate``: the response is cut at a word boundary after 20% to 60% of its words, preferring a
  word that does not end a sentence; nothing is added, so the result is a proper prefix.
- ``shuffle``: the words (whitespace-separated) are shuffled and joined with single spaces; the
  multiset of words is unchanged, the order is not.
- ``number``: one number (a run of digits not touching a letter, and not a list item's number)
  becomes a different number with as many digits, within about half its value; without a
  number, one capitalised word not at the start of a sentence or line becomes a capitalised word
  taken from another record's response. Exactly one whitespace-separated token changes.
- ``empty``: the response becomes a placeholder from :data:`PLACEHOLDERS`. The empty string is not
  one of them: tamis's reader rejects an empty response as a bad record, and every corrupted
  record should still be scored.
- ``loop``, ``copy_prompt``, ``refusal``, ``runon``, ``merge``, ``escapes``, ``markup``,
  ``typos``, ``boilerplate``: defects found in real and model-generated instruction data,
  described in :mod:`tamis.data.noise_kinds`. ``copy_prompt``, ``refusal``'s task-naming templates
  and ``runon`` read the prompt: the first of :data:`INSTRUCTION_FIELDS` and of
  :data:`INPUT_FIELDS`.

``truncate`` and ``shuffle`` need at least :data:`MIN_WORDS` words (and ``shuffle`` two different
words); ``number`` needs a number or an entity-like word; ``swap`` another record with a different
response; ``empty`` applies to every record; :mod:`tamis.data.noise_kinds` says when each of the
other nine applies (``copy_prompt`` and ``runon`` need an instruction). :func:`corrupt` gives each
kind an equal share of the corrupted records, as far as the records allow (see there).
"""

from __future__ import annotations

import copy
import math
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import write_jsonl
from tamis.data import noise_kinds

# Defects of real instruction data (tamis.data.noise_kinds), after the first five.
NEW_KINDS = (
    "loop", "copy_prompt", "refusal", "runon", "merge", "escapes", "markup", "typos",
    "boilerplate",
)  # fmt: skip

KINDS: tuple[str, ...] = (
    "swap",
    "truncate",
    "shuffle",
    "number",
    "empty",
    *NEW_KINDS,
)
PLACEHOLDERS: tuple[str, ...] = ("N/A", "I don't know.", "<noinput>", "...", "TODO")
RESPONSE_FIELDS: tuple[str, ...] = ("output", "response", "completion")
INSTRUCTION_FIELDS: tuple[str, ...] = ("instruction", "prompt", "question")
INPUT_FIELDS: tuple[str, ...] = ("input", "context")
MIN_WORDS = 4
TRUNCATE_RANGE = (0.2, 0.6)

_NUMBER = re.compile(r"(?<![A-Za-z0-9])\d+(?![A-Za-z])")
_ENTITY = re.compile(r"(?<![\w'-])[A-Z][a-z]+(?![\w'-])")
_SENTENCE_END = ".!?:"
_OPENERS = " \t\"'([*-\u201c\u2018"


def find_response_field(
    records: Sequence[dict[str, Any]], response_field: str | None = None
) -> str:
    """The field holding the response: ``response_field`` when given, else the first of
    :data:`RESPONSE_FIELDS` that the first record has. Every record must be an object with that
    field as text; otherwise a :class:`TamisError` names the record and the choices."""
    if response_field is None:
        first = records[0] if records and isinstance(records[0], dict) else {}
        response_field = next((f for f in RESPONSE_FIELDS if f in first), None)
        if response_field is None:
            raise TamisError(
                f"cannot find the response field in fields {sorted(first)[:8]}; expected one of: "
                f"{', '.join(RESPONSE_FIELDS)}; rename the field or pass response_field"
            )
    for i, obj in enumerate(records):
        if not isinstance(obj, dict) or not isinstance(obj.get(response_field), str):
            got = type(obj.get(response_field)).__name__ if isinstance(obj, dict) else "non-object"
            raise TamisError(
                f"record {i}: field '{response_field}' must be text, got {got}; fix the record "
                f"or choose the response field (one of: {', '.join(RESPONSE_FIELDS)})"
            )
    return response_field


def corrupt(
    records: Sequence[dict[str, Any]],
    rate: float,
    seed: int = 0,
    kinds: Sequence[str] | str = KINDS,
    response_field: str | None = None,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Corrupt exactly ``round(rate * len(records))`` responses; return ``(objects, labels)``.

    ``objects`` are deep copies of ``records`` in the same order; only the response field of the
    corrupted records differs, every other field (``id`` included) is untouched. ``labels`` has
    one entry per record, in order: ``{"id", "index", "kind", "original", "corrupted"}``, where
    ``id`` is the object's own ``id`` (None when it has none: match by ``index`` then) and
    ``kind`` the corruption applied (None for a clean record).

    Which records: ``random.Random(seed).sample`` of the indices. Which kind: balanced quotas,
    ``k // len(kinds)`` each and one more for the first ``k % len(kinds)`` of ``kinds`` (list a
    kind twice to double its share). The quotas are filled most constrained kind first (the one
    that applies to the fewest chosen records), each kind taking the still-free chosen records
    it applies to in sampled order; records left over (a kind that applies to too few records
    leaves part of its quota unused) take the kind that applies to them and has been used least.
    Each corruption draws from its own generator seeded by ``(seed, index, kind)``.

    >>> objs, labels = corrupt([{"output": "a b c d e"}, {"output": "x"}], 0.5, 1)
    >>> [label["kind"] for label in labels], objs[0]["output"]
    (['swap', None], 'x')
    """
    kinds = check_kinds(kinds)
    _check_rate(rate)
    if not records:
        return [], []
    field = find_response_field(records, response_field)
    responses = [obj[field] for obj in records]
    chosen = random.Random(seed).sample(range(len(records)), round(rate * len(records)))
    prompts = [
        (_first_text(obj, INSTRUCTION_FIELDS), _first_text(obj, INPUT_FIELDS)) for obj in records
    ]
    applied = _assign(chosen, kinds, _Corruptor(responses, seed, prompts))
    objects, labels = [], []
    for index, obj in enumerate(records):
        new = copy.deepcopy(obj)
        kind, text = applied.get(index, (None, responses[index]))
        if kind is not None:
            new[field] = text
        objects.append(new)
        labels.append(
            {
                "id": obj.get("id"),
                "index": index,
                "kind": kind,
                "original": responses[index],
                "corrupted": text,
            }
        )
    return objects, labels


def _assign(
    chosen: list[int], kinds: tuple[str, ...], corruptor: _Corruptor
) -> dict[int, tuple[str, str]]:
    """``{index: (kind, corrupted text)}`` for every chosen index (see :func:`corrupt`)."""
    quota = dict.fromkeys(kinds, 0)
    for i in range(len(chosen)):
        quota[kinds[i % len(kinds)]] += 1
    options = {index: corruptor.options(index, tuple(quota)) for index in chosen}
    eligible = {kind: [i for i in chosen if kind in options[i]] for kind in quota}
    applied: dict[int, tuple[str, str]] = {}
    used = dict.fromkeys(quota, 0)
    for kind in sorted(quota, key=lambda k: len(eligible[k])):  # stable: ties keep kinds order
        for index in eligible[kind]:
            if used[kind] == quota[kind]:
                break
            if index not in applied:
                applied[index] = (kind, options[index][kind])
                used[kind] += 1
    for index in chosen:
        if index in applied:
            continue
        if not options[index]:
            raise TamisError(
                f"record {index}: none of the corruptions {', '.join(quota)} applies to its "
                "response; add 'empty', which applies to every record"
            )
        kind = min(options[index], key=lambda k: used[k])  # options keep kinds order for ties
        applied[index] = (kind, options[index][kind])
        used[kind] += 1
    return applied


def check_kinds(kinds: Sequence[str] | str) -> tuple[str, ...]:
    """``kinds`` as a tuple (one name may be given as a string); unknown names fail with the
    valid choices."""
    kinds = (kinds,) if isinstance(kinds, str) else tuple(kinds)
    if not kinds:
        raise TamisError(f"no corruption kinds given; choose from: {', '.join(KINDS)}")
    for kind in kinds:
        if kind not in KINDS:
            raise TamisError(f"unknown corruption '{kind}'; choose one of: {', '.join(KINDS)}")
    return kinds


def _first_text(obj: dict[str, Any], fields: Sequence[str]) -> str | None:
    """The first of ``fields`` that ``obj`` holds as non-blank text, else None."""
    for f in fields:
        value = obj.get(f)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _check_rate(rate: float) -> None:
    """Fail with the bad value and an example unless ``rate`` is a number in [0, 1]."""
    ok = isinstance(rate, (int, float)) and not isinstance(rate, bool) and 0 <= rate <= 1
    if not ok:  # NaN fails the comparison too
        raise TamisError(
            f"corruption rate must be a number between 0 and 1, got {rate!r}; e.g. 0.2 corrupts "
            "a fifth of the records"
        )


def write_corrupted(
    folder: str | Path,
    objects: Sequence[dict[str, Any]],
    labels: Sequence[dict[str, Any]],
) -> tuple[Path, Path]:
    """Write ``folder/noisy.jsonl`` (the objects) and ``folder/labels.jsonl`` (the labels), each
    atomically; return both paths."""
    folder = Path(folder)
    paths = folder / "noisy.jsonl", folder / "labels.jsonl"
    for path, rows in zip(paths, (objects, labels), strict=True):
        write_jsonl(path, rows)
    return paths


class _Corruptor:
    """The corruption functions, sharing the dataset's original responses (for ``swap``) and
    its entity-like words (for ``number``). Each returns the corrupted text, or None when the
    kind does not apply to the record."""

    def __init__(
        self, responses: list[str], seed: int, prompts: list[tuple[str | None, str | None]] | None
    ) -> None:
        self.responses = responses
        self.seed = seed
        self.prompts = prompts or [(None, None)] * len(responses)
        self._owners: dict[str, set[int]] | None = None

    def options(self, index: int, kinds: Sequence[str] = KINDS) -> dict[str, str]:
        """``{kind: corrupted text}`` for every kind of ``kinds`` that applies to the record."""
        out = {}
        for kind in kinds:
            rng = random.Random(f"tamis-noise:{self.seed}:{index}:{kind}")
            text = getattr(self, f"_{kind}")(index, rng)
            if text is not None and text != self.responses[index]:
                out[kind] = text
        return out

    def _swap(self, index: int, rng: random.Random) -> str | None:
        own = self.responses[index]
        n = len(self.responses)
        for _ in range(32):  # almost always enough; the scan below settles the rare rest
            j = rng.randrange(n)
            if self.responses[j] != own:
                return self.responses[j]
        others = [j for j in range(n) if self.responses[j] != own]
        return self.responses[rng.choice(others)] if others else None

    def _truncate(self, index: int, rng: random.Random) -> str | None:
        text = self.responses[index]
        ends = [m.end() for m in re.finditer(r"\S+", text)]
        if len(ends) < MIN_WORDS:
            return None
        lo = max(1, math.ceil(TRUNCATE_RANGE[0] * len(ends)))
        hi = min(len(ends) - 1, math.floor(TRUNCATE_RANGE[1] * len(ends)))
        cuts = [ends[k - 1] for k in range(lo, hi + 1)]
        # A cut after "end." could pass for a complete answer; mid-sentence cuts are the defect.
        mid = [c for c in cuts if text[c - 1] not in _SENTENCE_END]
        return text[: rng.choice(mid or cuts)]

    def _shuffle(self, index: int, rng: random.Random) -> str | None:
        words = self.responses[index].split()
        if len(words) < MIN_WORDS or len(set(words)) < 2:
            return None
        shuffled = words[:]
        rng.shuffle(shuffled)
        if shuffled == words:  # rotating a non-constant list always changes it
            shuffled = words[1:] + words[:1]
        return " ".join(shuffled)

    def _number(self, index: int, rng: random.Random) -> str | None:
        text = self.responses[index]
        numbers = [m for m in _NUMBER.finditer(text) if not _list_marker(text, m)]
        if numbers:
            m = rng.choice(numbers)
            return text[: m.start()] + _other_number(m.group(), rng) + text[m.end() :]
        entities = [m for m in _ENTITY.finditer(text) if not _starts_sentence(text, m.start())]
        if not entities:
            return None
        m = rng.choice(entities)
        pool = self._entity_pool(index, m.group())
        if not pool:
            return None
        return text[: m.start()] + rng.choice(pool) + text[m.end() :]

    def _empty(self, index: int, rng: random.Random) -> str | None:
        return rng.choice([p for p in PLACEHOLDERS if p != self.responses[index]])

    def _other(self, index: int, rng: random.Random, need_instruction: bool) -> int | None:
        """Another record whose response (and instruction, when needed) differs from this one's."""
        own, n = self.responses[index], len(self.responses)

        def ok(j: int) -> bool:
            differs = self.responses[j] != own
            if need_instruction:
                inst = self.prompts[j][0]
                return differs and inst is not None and inst != self.prompts[index][0]
            return differs

        for _ in range(32):
            j = rng.randrange(n)
            if ok(j):
                return j
        others = [j for j in range(n) if ok(j)]
        return rng.choice(others) if others else None

    def _loop(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.loop(self.responses[index], rng, MIN_WORDS)

    def _copy_prompt(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.copy_prompt(self.responses[index], *self.prompts[index], rng)

    def _refusal(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.refusal(self.prompts[index][0], rng)

    def _runon(self, index: int, rng: random.Random) -> str | None:
        if self.prompts[index][0] is None:
            return None
        j = self._other(index, rng, need_instruction=True)
        if j is None:
            return None
        return noise_kinds.runon(self.responses[index], self.prompts[j][0], self.responses[j], rng)

    def _merge(self, index: int, rng: random.Random) -> str | None:
        j = self._other(index, rng, need_instruction=False)
        return (
            None if j is None else noise_kinds.merge(self.responses[index], self.responses[j], rng)
        )

    def _escapes(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.escapes(self.responses[index], rng)

    def _markup(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.markup(self.responses[index], rng)

    def _typos(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.typos(self.responses[index], rng, MIN_WORDS)

    def _boilerplate(self, index: int, rng: random.Random) -> str | None:
        return noise_kinds.boilerplate(self.responses[index], rng)

    def _entity_pool(self, index: int, word: str) -> list[str]:
        """Entity-like words of the other records' responses, sorted, without ``word``."""
        if self._owners is None:
            self._owners = {}
            for i, text in enumerate(self.responses):
                for m in _ENTITY.finditer(text):
                    if not _starts_sentence(text, m.start()):
                        self._owners.setdefault(m.group(), set()).add(i)
        return sorted(w for w, owners in self._owners.items() if w != word and (owners - {index}))


def _starts_sentence(text: str, start: int) -> bool:
    before = text[:start].rstrip(_OPENERS)
    return not before or before[-1] in _SENTENCE_END or before[-1] == "\n"


def _list_marker(text: str, m: re.Match) -> bool:
    # "1." or "2)" opening a line numbers a list item; changing it is no factual error.
    line_start = text.rfind("\n", 0, m.start()) + 1
    after = text[m.end() : m.end() + 2]
    return (
        not text[line_start : m.start()].strip() and after[:1] in ".)" and not after[1:].isdigit()
    )


def _other_number(digits: str, rng: random.Random) -> str:
    """A different number with as many digits as ``digits`` (zero-padded when it is), within
    about half its value either side: ``1969`` may become ``1322``, never ``985``."""
    value, width = int(digits), len(digits)
    padded = width > 1 and digits[0] == "0"
    lower = 0 if width == 1 or padded else 10 ** (width - 1)
    spread = max(1, value // 2)
    lo, hi = max(lower, value - spread), min(10**width - 1, value + spread)
    new = rng.randint(lo, hi - 1)
    new += new >= value  # skips ``value`` itself, uniformly
    return str(new).zfill(width) if padded else str(new)
