"""Scorers: one number (column) per record. They never drop.

Model scorers compute from the runner's per-token NLLs; text scorers (the heuristics, no model)
from the records' text. Each scorer says which direction is better; selection uses that as its
default. Scores are computed from cached NLLs every time, so changing a scorer never needs a new
forward pass.
"""

from __future__ import annotations

import re

from tamis.base.errors import TamisError
from tamis.scorers.base import Scorer, TextScorer, TokenNLL
from tamis.scorers.cluster import CLUSTER
from tamis.scorers.dedup import DEDUP_SCORERS
from tamis.scorers.endings import DANGLING_END
from tamis.scorers.heuristics import TEXT_SCORERS
from tamis.scorers.ifd import IFD, LEAD_PMI
from tamis.scorers.junk import INPUT_SCORERS as JUNK_INPUTS
from tamis.scorers.likelihood import (
    CE,
    CE_UNCOND,
    END_NLL,
    PEAK_NLL,
    PPL,
    PPL_UNCOND,
    WORST_NLL,
)
from tamis.scorers.loops import LOOPING
from tamis.scorers.residue import RESIDUE_SCORERS
from tamis.scorers.spelling import MISSPELT
from tamis.scorers.tokens import TOKENS
from tamis.scorers.topic import TOPIC

MODEL_SCORERS = (
    CE, PPL, CE_UNCOND, PPL_UNCOND, IFD, LEAD_PMI, END_NLL, PEAK_NLL, WORST_NLL, TOKENS
)  # fmt: skip
HEURISTIC_SCORERS = (
    *TEXT_SCORERS, *DEDUP_SCORERS, *RESIDUE_SCORERS, MISSPELT, DANGLING_END, LOOPING
)  # fmt: skip
SCORERS: dict[str, Scorer | TextScorer] = {
    s.name: s for s in (*MODEL_SCORERS, *HEURISTIC_SCORERS, CLUSTER, TOPIC)
}
# ``junk`` combines other scorers' columns over the whole dataset (tamis.scorers.junk): the job
# computes its inputs (the group below) and then the ``junk`` column itself.
JUNK = "junk"
DEFAULT_SCORERS = (*(s.name for s in MODEL_SCORERS), JUNK)
# Names that stand for several scorers.
GROUPS: dict[str, tuple[str, ...]] = {
    "heuristics": tuple(s.name for s in HEURISTIC_SCORERS),
    JUNK: JUNK_INPUTS,
}

# Scored by the job itself (tamis.scorers.lp fine-tunes the model), not by a Scorer.
TRAINING_SCORERS = ("lp",)
# Scored by the job with the model as a judge (tamis.scorers.judge): the expected 1-5 rating and the
# probability mass the model put on the digits at all.
JUDGE_SCORERS = {"rating": ("rating", "rating_mass")}

# Which way is better for every column any scorer writes: the selection default.
# "none" marks columns that are not quality scores (cluster ids).
DIRECTIONS: dict[str, str] = {
    c: s.better for s in SCORERS.values() for c in s.columns if s.better != "none"
}
# Learning percentage: low = learned late = hard, which Mekala et al. 2024 keep.
DIRECTIONS.update({"lp": "lower", "lp_approx": "lower"})
# The junk score: higher = more likely junk.
DIRECTIONS.update({JUNK: "lower"})
# tamis predict-loss: the large model's ce, measured on a sample and predicted for every record.
DIRECTIONS.update({"large_ce": "lower", "large_ce_pred": "lower"})
# The judge's rating and tamis clear's confidence and its parts: higher = better.
DIRECTIONS.update(
    dict.fromkeys(
        (
            "rating",
            "confidence",
            "consistency",
            "consistency_semantic",
            "consistency_lexical",
            "reflection",
        ),
        "higher",
    )
)


def direction_of(column: str) -> str | None:
    """``lower``/``higher`` for a score column, including learning percentage's ``p0..pN``, an
    ensemble's per-model columns (``ppl__gemma3_270m`` is like ``ppl``) and disagreement columns
    (lower: the models agree); None when unknown."""
    if column in DIRECTIONS:
        return DIRECTIONS[column]
    if re.fullmatch(r"p\d+", column):  # learning percentage's perplexity after epoch e
        return "lower"
    if "__" in column:
        return DIRECTIONS.get(column.split("__", 1)[0])
    if column.endswith("_disagreement"):
        return "lower"
    return None


def get_scorers(names: list[str] | tuple[str, ...]) -> list[Scorer | TextScorer]:
    """Look scorers up by name (``heuristics`` stands for all of them); an unknown name fails with
    the valid choices."""
    out = []
    for name in names:
        if name not in SCORERS and name not in GROUPS:
            choices = ", ".join([*SCORERS, *GROUPS, *TRAINING_SCORERS, *JUDGE_SCORERS])
            raise TamisError(f"unknown scorer '{name}'; choose one of: {choices}")
        for member in GROUPS.get(name, (name,)):
            if SCORERS[member] not in out:
                out.append(SCORERS[member])
    return out


__all__ = [
    "DEFAULT_SCORERS",
    "DIRECTIONS",
    "GROUPS",
    "HEURISTIC_SCORERS",
    "JUNK",
    "JUDGE_SCORERS",
    "SCORERS",
    "TRAINING_SCORERS",
    "Scorer",
    "TextScorer",
    "TokenNLL",
    "direction_of",
    "get_scorers",
]
