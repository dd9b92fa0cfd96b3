"""Scorers: one number (column) per record from the runner's per-token NLLs. They never drop.

Each scorer says which direction is better; selection uses that as its default. Scores are
computed from cached NLLs every time, so changing a scorer never needs a new forward pass.
"""

from __future__ import annotations

from tamis.errors import TamisError
from tamis.scorers.base import Scorer, TokenNLL
from tamis.scorers.ifd import IFD
from tamis.scorers.likelihood import CE, CE_UNCOND, PPL, PPL_UNCOND
from tamis.scorers.tokens import TOKENS

SCORERS: dict[str, Scorer] = {s.name: s for s in (CE, PPL, CE_UNCOND, PPL_UNCOND, IFD, TOKENS)}
DEFAULT_SCORERS = tuple(SCORERS)

# Which way is better for every column any scorer writes: the selection default.
DIRECTIONS: dict[str, str] = {c: s.better for s in SCORERS.values() for c in s.columns}


def get_scorers(names: list[str] | tuple[str, ...]) -> list[Scorer]:
    """Look scorers up by name; an unknown name fails with the valid choices."""
    out = []
    for name in names:
        if name not in SCORERS:
            raise TamisError(f"unknown scorer '{name}'; choose one of: {', '.join(SCORERS)}")
        if SCORERS[name] not in out:
            out.append(SCORERS[name])
    return out


__all__ = ["DEFAULT_SCORERS", "DIRECTIONS", "SCORERS", "Scorer", "TokenNLL", "get_scorers"]
