"""CLEAR: confidence that each response is good, auto-filter and auto-correct (Chen & Mueller 2024).

Confidence, BSDetector-style, from the scorer model alone:

- *observed consistency*: ``k`` responses are sampled for the record's prompt (seeded, at
  ``temperature``); for each, ``w * cosine + (1 - w) * token_f1`` with the given response, where
  ``cosine`` is the all-MiniLM-L6-v2 similarity (floored at 0) and ``token_f1`` the unigram F1 of
  lower-cased words; ``consistency`` is their mean over the samples (``w`` = ``semantic_weight``,
  0.5 by default; the two parts are kept as ``consistency_semantic`` and
  ``consistency_lexical``);
- *self-reflection*: the probability the model puts on "yes" when asked whether the response is
  correct and helpful (:func:`tamis.scorers.judge.reflection`);
- ``confidence = beta * consistency + (1 - beta) * reflection``, ``beta`` = 0.7 (BSDetector's
  default weighting of the two).

Auto-correct, for the records the filter drops: a candidate response is generated (greedy, or
the most confident of ``best_of`` samples), given a confidence the same way (consistency against
the same ``k`` samples, reflection on the candidate), and compared with the original by the model
in both orders (:func:`tamis.scorers.judge.preference`). The response is replaced only when the
candidate finished (was not cut off by the token limit), is preferred with probability at least
``prefer_threshold``, *and* has a higher confidence than the original.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from tamis.base.errors import TamisError
from tamis.data.records import Record
from tamis.model.generate import Generated, Request, generate
from tamis.model.render import Encoded
from tamis.scorers.judge import preference, reflection
from tamis.scorers.score import progress_bar

CONFIDENCE_COLUMNS = (
    "confidence",
    "consistency",
    "consistency_semantic",
    "consistency_lexical",
    "reflection",
    "reflection_mass",
)
_WORD = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True)
class ClearConfig:
    """Settings of the confidence estimate and of auto-correct (defaults documented above)."""

    samples: int = 3
    temperature: float = 0.8
    max_new_tokens: int = 128
    beta: float = 0.7
    semantic_weight: float = 0.5
    seed: int = 0
    correct: bool = True
    best_of: int = 1  # 1: the greedy response is the candidate
    correct_max_new_tokens: int = 256
    prefer_threshold: float = 0.6

    def check(self) -> None:
        for name in ("samples", "max_new_tokens", "best_of", "correct_max_new_tokens"):
            if getattr(self, name) < 1:
                raise TamisError(f"--{name.replace('_', '-')} must be at least 1")
        for name in ("beta", "semantic_weight", "prefer_threshold"):
            if not 0 <= getattr(self, name) <= 1:
                raise TamisError(f"--{name.replace('_', '-')} must be between 0 and 1")
        if not self.temperature > 0:
            raise TamisError("--temperature must be positive: consistency needs varied samples")


@dataclass(frozen=True)
class Correction:
    """The outcome of auto-correct for one record; ``applied`` says whether it was replaced."""

    index: int
    id: str
    original: str
    candidate: str
    confidence: float
    candidate_confidence: float
    preference: float
    applied: bool
    reason: str  # applied, candidate_unfinished, candidate_empty, not_preferred, not_more_confident


def token_f1(a: str, b: str) -> float:
    """Unigram F1 between the lower-cased words of ``a`` and ``b`` (multiset overlap); 0 if either
    has no words.

    >>> round(token_f1("The cat sat", "the cat ran"), 4)
    0.6667
    """
    wa, wb = Counter(_WORD.findall(a.lower())), Counter(_WORD.findall(b.lower()))
    overlap = sum((wa & wb).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / sum(wb.values()), overlap / sum(wa.values())
    return 2 * precision * recall / (precision + recall)


def consistency(
    given: Sequence[str], samples: Sequence[Sequence[str]], embedder, semantic_weight: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(combined, semantic, lexical) agreement of each ``given[i]`` with its ``samples[i]``."""
    from tamis.model.embed import embed_texts

    flat = [s for group in samples for s in group]
    vectors = embed_texts([*given, *flat], embedder)
    g, s = vectors[: len(given)], vectors[len(given) :]
    semantic, lexical, at = np.zeros(len(given)), np.zeros(len(given)), 0
    for i, group in enumerate(samples):
        cos = [
            max(0.0, float(g[i] @ s[at + j])) if group[j].strip() else 0.0
            for j in range(len(group))
        ]
        f1 = [token_f1(given[i], text) for text in group]
        semantic[i], lexical[i] = float(np.mean(cos)), float(np.mean(f1))
        at += len(group)
    return semantic_weight * semantic + (1 - semantic_weight) * lexical, semantic, lexical


def confidence_scores(
    lm,
    records: Sequence[Record],
    encoded: Sequence[Encoded],
    cache,
    cfg: ClearConfig,
    embedder,
    batch_size: int = 8,
    progress: bool = True,
) -> tuple[list[dict[str, float]], list[list[str]]]:
    """One ``{column: value}`` per record (:data:`CONFIDENCE_COLUMNS`) and the sampled texts."""
    reqs = [Request(e.input_ids[: e.n_prompt], j) for e in encoded for j in range(cfg.samples)]
    bar = progress_bar(len(reqs), progress, "sampling")
    gens = generate(
        lm, reqs, cache, cfg.temperature, cfg.max_new_tokens, cfg.seed, batch_size, bar.update
    )
    bar.close()
    samples = [
        [g.text for g in gens[i : i + cfg.samples]] for i in range(0, len(gens), cfg.samples)
    ]
    combined, semantic, lexical = consistency(
        [r.response for r in records], samples, embedder, cfg.semantic_weight
    )
    bar = progress_bar(len(records), progress, "reflection")
    refl = reflection(lm, records, [r.response for r in records], cache, batch_size, bar.update)
    bar.close()
    rows = []
    for i, (p_yes, mass) in enumerate(refl):
        rows.append(
            {
                "confidence": cfg.beta * combined[i] + (1 - cfg.beta) * p_yes,
                "consistency": float(combined[i]),
                "consistency_semantic": float(semantic[i]),
                "consistency_lexical": float(lexical[i]),
                "reflection": p_yes,
                "reflection_mass": mass,
            }
        )
    return rows, samples


def fill_confidence(
    lm,
    records: dict[int, Record],
    encoded: dict[int, Encoded],
    rows: dict[int, dict],
    cache,
    cfg: ClearConfig,
    embedder,
    batch_size: int = 8,
    progress: bool = True,
) -> dict[int, list[str]]:
    """Add the :data:`CONFIDENCE_COLUMNS` to every row of ``rows`` (``{index: row}``): the values
    for the records in ``encoded``, ``None`` for the others (records that were not scored keep
    their status). Returns ``{index: sampled responses}`` of the scored records."""
    order = sorted(encoded)
    conf, samples = confidence_scores(
        lm, [records[i] for i in order], [encoded[i] for i in order], cache, cfg, embedder,
        batch_size, progress,
    )  # fmt: skip
    for row in rows.values():
        row.update(dict.fromkeys(CONFIDENCE_COLUMNS))
    for i, values in zip(order, conf, strict=True):
        rows[i].update(values)
    return dict(zip(order, samples, strict=True))


def auto_correct(
    lm,
    records: Sequence[Record],
    encoded: Sequence[Encoded],
    confidences: Sequence[float],
    samples: Sequence[Sequence[str]],
    cache,
    cfg: ClearConfig,
    embedder,
    batch_size: int = 8,
    progress: bool = True,
) -> list[Correction]:
    """A :class:`Correction` per record (the ones the filter dropped), applied or not."""
    if not records:
        return []
    candidates = _candidates(lm, encoded, samples, cache, cfg, embedder, batch_size, progress)
    texts = [c.text for c in candidates]
    combined, _, _ = consistency(texts, samples, embedder, cfg.semantic_weight)
    refl = reflection(lm, records, texts, cache, batch_size)
    bar = progress_bar(len(records), progress, "comparing")
    prefs = preference(lm, records, texts, cache, batch_size, lambda n: bar.update(n / 2))
    bar.close()
    out = []
    for i, rec in enumerate(records):
        cand_conf = cfg.beta * combined[i] + (1 - cfg.beta) * refl[i][0]
        reason = _verdict(candidates[i], prefs[i], cand_conf, confidences[i], cfg)
        out.append(
            Correction(
                rec.index,
                rec.id,
                rec.response,
                texts[i],
                float(confidences[i]),
                float(cand_conf),
                prefs[i],
                reason == "applied",
                reason,
            )  # fmt: skip
        )
    return out


def _verdict(cand: Generated, pref: float, cand_conf: float, conf: float, cfg) -> str:
    if not cand.finished:
        return "candidate_unfinished"
    if not cand.text.strip():
        return "candidate_empty"
    if pref < cfg.prefer_threshold:
        return "not_preferred"
    if cand_conf <= conf:
        return "not_more_confident"
    return "applied"


def _candidates(
    lm, encoded, samples, cache, cfg, embedder, batch_size, progress
) -> list[Generated]:
    """Greedy (``best_of == 1``), else the sample most consistent with the record's ``k`` samples
    among ``best_of`` drawn with sample numbers after them (finished ones first)."""
    n = cfg.best_of
    temperature = 0.0 if n == 1 else cfg.temperature
    reqs = [Request(e.input_ids[: e.n_prompt], cfg.samples + j) for e in encoded for j in range(n)]
    bar = progress_bar(len(reqs), progress, "correcting")
    gens = generate(
        lm, reqs, cache, temperature, cfg.correct_max_new_tokens, cfg.seed, batch_size, bar.update
    )
    bar.close()
    if n == 1:
        return gens
    groups = [gens[i : i + n] for i in range(0, len(gens), n)]
    flat_texts = [g.text for group in groups for g in group]
    repeated = [samples[i] for i in range(len(groups)) for _ in range(n)]
    score, _, _ = consistency(flat_texts, repeated, embedder, cfg.semantic_weight)
    best = []
    for i, group in enumerate(groups):
        order = sorted(range(n), key=lambda j: (not group[j].finished, -score[i * n + j], j))
        best.append(group[order[0]])
    return best
