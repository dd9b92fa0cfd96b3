"""What a scorer is: a name, its columns, the better direction, and a pure function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from tamis.data.records import Record


@dataclass(frozen=True)
class TokenNLL:
    """Per-token NLLs of one record's response tokens, with and without the prompt.

    A pass no requested scorer needs is None; the counts come from the encoding.
    """

    conditional: np.ndarray | None
    unconditional: np.ndarray | None
    n_prompt: int
    n_response: int


@dataclass(frozen=True)
class Scorer:
    """``compute`` maps a record's :class:`TokenNLL` to ``{column: value}``.

    ``better`` is ``"lower"`` or ``"higher"``; ``passes`` names the forward passes it needs
    (``"conditional"``, ``"unconditional"``).
    """

    name: str
    columns: tuple[str, ...]
    better: str
    passes: frozenset[str]
    compute: Callable[[TokenNLL], dict[str, float]]


@dataclass(frozen=True)
class TextScorer:
    """A scorer that needs no model, only the records' text.

    ``compute_all(records)`` returns ``{column: [value per record]}`` for the whole dataset at once,
    because some of these scores (duplicates, length outliers) are only defined against every
    other record. ``better`` is ``"lower"`` or ``"higher"`` for all its columns, or ``"none"``
    for columns that are not quality scores (cluster ids).
    """

    name: str
    columns: tuple[str, ...]
    better: str
    compute_all: Callable[[list[Record]], dict[str, list[float]]]
