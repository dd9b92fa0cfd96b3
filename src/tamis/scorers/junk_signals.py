"""The signals of :mod:`tamis.scorers.junk`: each one's column, direction, cut and meaning.

The table of what each signal sees and why each cut is where it is: :mod:`tamis.scorers.junk`'s
docstring. Here are the signals as data, read by ``junk_scores`` (the combination), by
``junk.text_flags`` (:data:`GENERATION_FLAGS`, on a model's greedy answers in ``tamis eval``)
and by :mod:`tamis.scorers` (:data:`INPUT_SCORERS`, the scorers junk needs).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tamis.base.maths import finite

Z_CUT = 3.5
ROOT = 1 / 2
FLAG_MARGIN = 2.0
OFF_TOPIC_CUT = 0.08  # cosine; see tamis.scorers.junk's docstring
APPENDED_CUT = 0.17  # cosine; see tamis.scorers.junk's docstring
UNRELATED_RELEVANCE_CUT = 0.32  # cosine; see tamis.scorers.junk's docstring
MISSPELT_CUT = 0.05  # share of words; see tamis.scorers.junk's docstring
LOOP_COPIES = 4  # back-to-back copies of a phrase (tamis.scorers.loops)


@dataclass(frozen=True)
class TailSignal:
    """Fires in the tail of a value: ``sign * value(row)`` at or past ``cut`` (``None``: the robust
    z cut ``median + Z_CUT * scale`` of the oriented values, within the record's length bin when
    ``by_length``)."""

    name: str
    column: str  # what the detail names the value
    sign: float  # +1: high values are suspicious; -1: low ones
    cut: float | None
    value: Callable[[dict[str, Any]], float | None]
    meaning: str
    by_length: bool = False


@dataclass(frozen=True)
class FlagSignal:
    """Fires when ``column`` passes a fixed threshold: ``op`` is ``">="``, ``">"`` or ``"<"``."""

    name: str
    column: str
    op: str
    threshold: float
    meaning: str

    def fires(self, value: float) -> bool:
        """Whether ``value`` passes the threshold (fires)."""
        if self.op == ">=":
            return value >= self.threshold
        if self.op == ">":
            return value > self.threshold
        return value < self.threshold


def _column(name: str) -> Callable[[dict[str, Any]], float | None]:
    return lambda row: row.get(name)


def _end_root(row: dict[str, Any]) -> float | None:
    """``sqrt(end_nll)``: one token's NLL is skewed like a gamma variable, and a power of it is
    nearly normal (Wilson and Hilferty 1931 take the cube root; the square root was chosen on
    development records, docs/guide.md), so a robust z cut means about what it says."""
    v = row.get("end_nll")
    return max(v, 0.0) ** ROOT if finite(v) else None


def _mean_pmi(row: dict[str, Any]) -> float | None:
    """``ce_uncond - ce``: the prompt's information per response token (``-log ifd``)."""
    ce, ce_uncond = row.get("ce"), row.get("ce_uncond")
    return ce_uncond - ce if finite(ce) and finite(ce_uncond) else None


TAILS = (
    TailSignal(
        "unlikely", "ce", 1.0, None, _column("ce"), "improbable given the prompt", by_length=True
    ),
    TailSignal("unfinished", "end_nll", 1.0, None, _end_root, "the model expected more"),
    TailSignal(
        "unlikely_part",
        "peak_nll",
        1.0,
        None,
        _column("peak_nll"),
        "a stretch is improbable",
        by_length=True,
    ),
    TailSignal(
        "unlikely_words",
        "worst_nll",
        1.0,
        None,
        _column("worst_nll"),
        "scattered tokens are improbable",
        by_length=True,
    ),
    TailSignal(
        "off_topic",
        "part_relevance",
        -1.0,
        OFF_TOPIC_CUT,
        _column("part_relevance"),
        "a part is about something else",
    ),
    TailSignal(
        "appended",
        "tail_relevance",
        -1.0,
        APPENDED_CUT,
        _column("tail_relevance"),
        "the response's end is about something else",
    ),
)
# ``unrelated`` needs both PMIs (the prompt helps neither the opening nor the average: IFD >= 1)
UNRELATED = (
    TailSignal("unrelated", "lead_pmi", -1.0, 0.0, _column("lead_pmi"), "the prompt does not help"),
    TailSignal("unrelated", "ce_uncond-ce", -1.0, 0.0, _mean_pmi, "the prompt does not help"),
)
# and, where ``topic`` ran, a response about something other than the prompt.
UNRELATED_TOPIC = TailSignal(
    "unrelated",
    "prompt_relevance",
    -1.0,
    UNRELATED_RELEVANCE_CUT,
    _column("prompt_relevance"),
    "the prompt does not help",
)
FLAGS = (
    FlagSignal("repetitive", "repetition", ">=", 0.6, "repeats the same words"),
    FlagSignal("looping", "loop_copies", ">=", LOOP_COPIES, "repeats a phrase back to back"),
    FlagSignal("echo", "echo", ">=", 1.0, "repeats the prompt"),
    FlagSignal("placeholder", "placeholder", ">=", 1.0, "a placeholder"),
    FlagSignal("non_text", "non_text", ">", 0.3, "not text"),
    FlagSignal("no_words", "response_words", "<", 1.0, "no words"),
    FlagSignal("markup", "markup", ">=", 1.0, "markup or escapes the prompt did not ask for"),
    FlagSignal("template_leak", "template_leak", ">=", 1.0, "a template marker: a run-on"),
    FlagSignal("boilerplate", "boilerplate", ">=", 1.0, "a line of web boilerplate"),
    FlagSignal("refusal", "refusal", ">=", 1.0, "a refusal or AI disclaimer"),
    FlagSignal("misspelt", "misspelt", ">=", MISSPELT_CUT, "misspelt words"),
    FlagSignal("dangling", "dangling", ">=", 1.0, "stops on a word that cannot end a sentence"),
)
# The flags ``tamis eval`` reads on a model's greedy answers: not ``dangling`` (an answer stops
# wherever --max-new-tokens cuts it) nor ``misspelt`` and ``looping`` (the experiments'
# junk-flagged share was defined before them, and stays comparable across their runs).
GENERATION_FLAGS = tuple(f for f in FLAGS if f.name not in ("dangling", "misspelt", "looping"))
# What each signal means, in words, for the detail.
MEANINGS = {s.name: s.meaning for s in (*TAILS, *UNRELATED, *FLAGS)}
# The scorers whose columns junk is computed from (``tokens`` writes ``response_tokens``).
INPUT_SCORERS = (
    "ce", "ce_uncond", "lead_pmi", "end_nll", "peak_nll", "worst_nll", "tokens", "topic",
    *(f.column for f in FLAGS),
)  # fmt: skip
