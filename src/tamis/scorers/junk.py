"""Junk: one label-free score for records that are broken, not merely hard.

Likelihood alone cannot find junk: a response that repeats itself or copies the prompt is exactly
what a language model finds most likely, and an answer to another question is fluent text. Each
signal below sees some kinds of junk and is blind to others; ``junk`` takes the strongest.

Every signal gives a *margin*, in robust standard deviations of its own values on this dataset:
negative while the record looks normal, 0 at the signal's cut, positive past it.

=================  ====================  ==========================================================
signal             value                 fires when
=================  ====================  ==========================================================
``unlikely``       ``ce``                robust z >= 3.5 among responses of about the same length
                                         (up to 5 equal-count bins of ``response_tokens``): shuffled
                                         or garbled words, broken encoding
``unrelated``      ``lead_pmi``,         both <= 0 nats: the prompt helps neither the response's
                   ``ce_uncond - ce``    first 16 tokens nor the whole (IFD >= 1): an answer to
                   and                   another question, a canned reply; and, where the topic
                   ``prompt_relevance``  scorer ran, the response is no closer to the prompt than
                                         :data:`UNRELATED_RELEVANCE_CUT` (a short answer that names
                                         what the prompt asks about is not unrelated, however
                                         unlikely); margin: the least of the three
``unfinished``     ``sqrt(end_nll)``     robust z >= 3.5: the model did not expect the response to
                                         end there (cut off mid-sentence)
``unlikely_part``  ``peak_nll``          robust z >= 3.5 within length bins: the least likely
                                         8-token stretch (a second answer, a leaked example, typos)
``unlikely_words`` ``worst_nll``         robust z >= 3.5 within length bins: the least likely 10% of
                                         the tokens, wherever they are (typos, OCR errors)
``off_topic``      ``part_relevance``    < :data:`OFF_TOPIC_CUT`: a part of the response relates
                                         neither to the prompt nor to anything before it (a second
                                         answer, a leaked example, boilerplate; :mod:`~.topic`)
``appended``       ``tail_relevance``    < :data:`APPENDED_CUT`: the rest of the response, from some
                                         sentence on, relates neither to the prompt nor to what
                                         came before it (a second answer appended; :mod:`~.topic`)
``repetitive``     ``repetition``        >= 0.6: three or more copies of the same words (a loop)
``looping``        ``loop_copies``       >= :data:`LOOP_COPIES`: a phrase four times back to back (a
                                         loop at the end of a long response; :mod:`~.loops`)
``echo``           ``echo``              1: the response repeats a part of the prompt
``placeholder``    ``placeholder``       1: ``N/A``, ``<nooutput>``, ``...``
``non_text``       ``non_text``          > 0.3: binary junk, mojibake, base64 blobs
``no_words``       ``response_words``    < 1: bare punctuation
``markup``         ``markup``            1: HTML or escapes the prompt did not ask for
``template_leak``  ``template_leak``     1: a template marker (``### Instruction``, ``<|im_end|>``)
``boilerplate``    ``boilerplate``       1: a C4 boilerplate line (enable JavaScript, a site policy)
``refusal``        ``refusal``           1: a refusal or AI disclaimer in place of the answer
``misspelt``       ``misspelt``          >= :data:`MISSPELT_CUT`: words no English word list knows
                                         (typos, OCR errors; :mod:`~.spelling`)
``dangling``       ``dangling``          1: the response stops on ``the``, ``and``, ``of``... with
                                         no full stop (cut off; :mod:`~.endings`)
=================  ====================  ==========================================================

The robust z is ``(x - median) / (1.4826 * MAD)`` over the dataset's scored records (Iglewicz and
Hoaglin's 3.5 for an outlier), so it means the same on any dataset: a cut in the data's own
spread, which 20% of junk barely moves. The text flags (:mod:`tamis.scorers.heuristics`,
:mod:`tamis.scorers.residue`, :mod:`~.spelling`, :mod:`~.endings`) are 0/1 or have a fixed
threshold; a fired flag has a margin of :data:`FLAG_MARGIN`. ``junk`` is the largest margin when
one is past its cut; below every cut it is ``-1 / (1 + F)`` with ``F = -2 * sum(log(1 - p))``,
Fisher's combination of the record's two largest percentiles ``p`` among the tail signals, so
records still come in order of how close they are to junk. Higher = more likely junk; ``junk >
0``: some signal fired. Selection drops ``junk > 0`` by default (``--drop-junk-above``), with
reason ``junk_<signal>`` and the value in the detail.

No weight or threshold here was fitted to the benchmark's labels: 3.5 is the textbook outlier cut,
0 nats is "the prompt gives no information", and the heuristics' thresholds are those of
``--filter default`` (the residue, ``dangling``, ``misspelt`` and ``looping`` flags are not in
it). ``part_relevance``'s spread on clean data is too wide for a robust z cut to fire, so
:data:`OFF_TOPIC_CUT`, :data:`APPENDED_CUT` and :data:`UNRELATED_RELEVANCE_CUT` are fixed cosines
chosen on development sets disjoint from the benchmark's samples (``part_relevance_dev.py``;
docs/results.md): the first two flag at most 2% and 0.5% of the clean development records, the
third keeps 99% of the development swaps (answers to another record's prompt) below it.
:data:`TOP_PERCENTILES` came from them too (``junk_combination_dev.py``), :data:`MISSPELT_CUT`
as well (``misspelt_dev.py``: the smallest share flagging <= 1% of their clean records).

Cost: the conditional pass (``ce``, ``end_nll``, ``peak_nll``, ``worst_nll``) and the
prompt-free pass ``ifd`` already needs (one forward pass more than ``ppl`` alone), the text
heuristics (no model), and MiniLM sentence embeddings of the prompt and the response's parts
(``topic``; a 22M-parameter encoder, no language-model pass). With fewer than :data:`MIN_RECORDS`
scored records, or a column whose MAD is 0, the model signals are skipped (the spread cannot be
estimated) and only the flags count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tamis.base.maths import robust_location_scale
from tamis.scorers.junk_signals import (
    APPENDED_CUT,
    FLAG_MARGIN,
    FLAGS,
    GENERATION_FLAGS,
    INPUT_SCORERS,
    LOOP_COPIES,
    MEANINGS,
    MISSPELT_CUT,
    OFF_TOPIC_CUT,
    ROOT,
    TAILS,
    UNRELATED,
    UNRELATED_RELEVANCE_CUT,
    UNRELATED_TOPIC,
    Z_CUT,
    FlagSignal,
    TailSignal,
    finite,
)

# The signals live in junk_signals; these names stay importable from here too.
__all__ = [
    "APPENDED_CUT", "BIN_RECORDS", "DEFAULT_CUT", "FLAG_MARGIN", "FLAGS", "GENERATION_FLAGS",
    "INPUT_SCORERS", "LENGTH_BINS", "LOOP_COPIES", "MEANINGS", "MIN_RECORDS", "MISSPELT_CUT",
    "OFF_TOPIC_CUT", "ROOT", "TAILS", "TOP_PERCENTILES", "UNRELATED", "UNRELATED_RELEVANCE_CUT",
    "UNRELATED_TOPIC", "Z_CUT", "FlagSignal", "TailSignal", "Verdict", "add_junk", "junk_scores",
    "text_flags",
]  # fmt: skip

MIN_RECORDS = 8
DEFAULT_CUT = 0.0
TOP_PERCENTILES = 2  # below the cuts: the percentiles combined (docs/guide.md, Junk)
LENGTH_BINS = 5  # at most; one per BIN_RECORDS records
# 100: the demo's 300 Dolly records in one bin lost 5%, mostly answers of 1-5 words (a short
# answer's ce is noisy); in 3 bins 3%. Detection on the development sets did not change.
BIN_RECORDS = 100


@dataclass(frozen=True)
class Verdict:
    """One record's junk score, the signal with the largest margin, and that signal in words."""

    junk: float | None
    signal: str
    detail: str


def junk_scores(
    rows: Sequence[dict[str, Any]], leave_out: frozenset[str] = frozenset()
) -> list[Verdict]:
    """One :class:`Verdict` per row (``status != "ok"`` rows get ``junk`` None). ``rows`` need the
    columns of :data:`INPUT_SCORERS` that exist in them; a missing column's signal is skipped.
    ``leave_out`` names signals to ignore (to measure what each one adds). Depends on the set of
    rows, not on their order."""
    tails = tuple(s for s in TAILS if s.name not in leave_out)
    pair = tuple(s for s in UNRELATED if s.name not in leave_out)
    gate = () if "unrelated" in leave_out else (UNRELATED_TOPIC,)
    flags = tuple(f for f in FLAGS if f.name not in leave_out)
    ok = [r for r in rows if r.get("status", "ok") == "ok"]
    bins = _length_bins(ok)
    refs = {id(s): _references(s, ok, bins) for s in (*tails, *pair, *gate)}
    found = {id(r): _signals(r, refs, bins, tails, pair, gate, flags) for r in ok}
    fisher = _fisher(ok, found, (*tails, *pair))
    out = []
    for row in rows:
        signals = found.get(id(row)) if row.get("status", "ok") == "ok" else None
        if not signals:
            detail = "" if signals is None else "no junk signal could be computed"
            out.append(Verdict(None, "", detail))
            continue
        margin, name, detail = max(signals, key=lambda x: x[0])  # first of equals: TAILS order
        junk = margin if margin > 0 else -1.0 / (1.0 + fisher[id(row)])
        out.append(Verdict(round(junk, 6), name, f"{detail} ({MEANINGS[name]})"))
    return out


def _signals(row, refs, bins, tails, pair, gate, flags) -> list[tuple[float, str, str]]:
    """``(margin, signal, detail)`` of every signal that can be computed for ``row``. ``pair``:
    the signals ``unrelated`` needs; ``gate``: those it reads where they can be computed."""
    found = [_tail(s, row, refs[id(s)], bins) for s in tails]
    both = [_tail(s, row, refs[id(s)], bins) for s in pair]
    if both and all(p is not None for p in both):  # all past their cut, or the least margin
        both += [g for g in (_tail(s, row, refs[id(s)], bins) for s in gate) if g is not None]
        found.append((min(p[0] for p in both), "unrelated", "; ".join(p[2] for p in both)))
    for f in flags:
        value = row.get(f.column)
        if finite(value) and f.fires(value):
            found.append((FLAG_MARGIN, f.name, f"{f.column}={value:.4g} {f.op} {f.threshold:g}"))
    return [x for x in found if x is not None]


def _fisher(rows, found, signals) -> dict[int, float]:
    """``{id(row): F}``: Fisher's ``F = -2 * sum(log(1 - p))`` over a row's :data:`TOP_PERCENTILES`
    largest :func:`_percentiles`: far out on one or two signals beats a little off on all."""
    ps = _percentiles(rows, found, signals).items()
    return {k: sum(-2.0 * math.log(1.0 - p) for p in sorted(v)[-TOP_PERCENTILES:]) for k, v in ps}


def _percentiles(rows, found, signals) -> dict[int, list[float]]:
    """``{id(row): [p, ...]}``: per tail signal the row has, its margin's rank among the rows
    that have that signal over their number plus one (ties averaged)."""
    from scipy.stats import rankdata

    ps: dict[int, list[float]] = {id(r): [] for r in rows}
    for name in dict.fromkeys(s.name for s in signals):
        have = [(id(r), m) for r in rows for m, n, _ in found[id(r)] if n == name]
        ranks = rankdata([m for _, m in have]) / (len(have) + 1) if have else []
        for (key, _), p in zip(have, ranks, strict=True):
            ps[key].append(float(p))
    return ps


def text_flags(records) -> list[str]:
    """The first of :data:`GENERATION_FLAGS` that fires on each
    :class:`~tamis.data.records.Record` (``""`` for none): the model-free part of junk, for texts
    no score pass has read (a model's greedy answers in ``tamis eval``: loops, copies of the
    prompt, placeholders)."""
    from tamis.scorers import SCORERS

    flags = GENERATION_FLAGS
    owners = dict.fromkeys(
        next(s for s in SCORERS.values() if f.column in s.columns).name for f in flags
    )
    values: dict[str, list[float]] = {}
    for name in owners:
        values.update(SCORERS[name].compute_all(list(records)))
    out = []
    for j in range(len(records)):
        fired = (
            f.name for f in flags if finite(values[f.column][j]) and f.fires(values[f.column][j])
        )
        out.append(next(fired, ""))
    return out


def add_junk(result) -> None:
    """Add ``junk``, ``junk_signal`` and ``junk_detail`` to a
    :class:`~tamis.scorers.score.ScoreResult`'s rows and ``junk`` to its columns (once)."""
    for row, v in zip(result.rows, junk_scores(result.rows), strict=True):
        row.update(junk=v.junk, junk_signal=v.signal, junk_detail=v.detail)
    if "junk" not in result.columns:
        result.columns.append("junk")


def _length_bins(rows: Sequence[dict[str, Any]]) -> np.ndarray | None:
    """Upper edges of equal-count bins of ``response_tokens`` (None: one bin). Likelihood is
    noisier for short responses (a one-word answer naming a rare fact has a high ``ce``), so a
    response is compared with responses of about its length."""
    lengths = np.array([r["response_tokens"] for r in rows if finite(r.get("response_tokens"))])
    k = min(LENGTH_BINS, len(lengths) // BIN_RECORDS)
    if k < 2:
        return None
    return np.unique(np.quantile(lengths, np.arange(1, k) / k))


def _bin(row: dict[str, Any], bins: np.ndarray | None) -> int:
    n = row.get("response_tokens")
    if bins is None or not finite(n):
        return 0
    return int(np.searchsorted(bins, n, side="left"))


def _references(s: TailSignal, rows, bins) -> dict[int, tuple[float, float] | None]:
    """``{bin: (cut, scale)}`` of a tail signal on its oriented values; None for a bin whose
    spread cannot be estimated (fewer than MIN_RECORDS values, or a MAD of 0)."""
    groups: dict[int, list[float]] = {}
    for r in rows:
        v = s.value(r)
        if finite(v):
            groups.setdefault(_bin(r, bins) if s.by_length else 0, []).append(s.sign * v)
    out = {}
    for b, values in groups.items():
        med, scale = robust_location_scale(np.array(values))
        if len(values) < MIN_RECORDS or not scale > 0:
            out[b] = None
        else:
            out[b] = (med + Z_CUT * scale if s.cut is None else s.sign * s.cut, scale)
    return out


def _tail(s: TailSignal, row, refs, bins) -> tuple[float, str, str] | None:
    """``(margin, name, detail)`` of a tail signal for one row; None when it cannot be computed."""
    value = s.value(row)
    ref = refs.get(_bin(row, bins) if s.by_length else 0)
    if ref is None or not finite(value):
        return None
    cut, scale = ref
    op = ">=" if s.sign > 0 else "<="
    return (
        (s.sign * value - cut) / scale,
        s.name,
        f"{s.column}={value:.4g}, cut {op} {s.sign * cut:.4g}",
    )
