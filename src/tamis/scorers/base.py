"""What a scorer is: a name, its columns, the better direction, and a pure function."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


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
