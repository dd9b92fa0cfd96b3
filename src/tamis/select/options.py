"""The selection options written as text: a --filter expression and a --keep count or fraction."""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from tamis.base.errors import TamisError

_OPS = {
    "<=": operator.le,
    ">=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    ">": operator.gt,
}
_FILTER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|!=|<|>)\s*(\S+)\s*$")


@dataclass(frozen=True)
class Filter:
    """Keep a record only when ``row[column] <op> value`` holds."""

    column: str
    op: str
    value: float

    def passes(self, value: float) -> bool:
        return bool(_OPS[self.op](value, self.value))

    def __str__(self) -> str:
        return f"{self.column}{self.op}{self.value:g}"


def parse_filter(text: str) -> Filter:
    """``"repetition<=0.3"`` -> ``Filter("repetition", "<=", 0.3)``."""
    match = _FILTER.match(text)
    if match is None:
        raise TamisError(
            f"--filter '{text}': write COLUMN OP NUMBER, e.g. 'repetition<=0.3' "
            f"(OP one of: {', '.join(_OPS)})"
        )
    column, op, raw = match.groups()
    try:
        value = float(raw)
    except ValueError:
        raise TamisError(f"--filter '{text}': '{raw}' is not a number") from None
    return Filter(column, op, value)


def parse_keep(text: str) -> int | float:
    """``"500"`` -> 500 records; ``"0.2"`` or ``"20%"`` -> a fraction of the scored records."""
    raw = text.strip()
    try:
        if raw.endswith("%"):
            value: int | float = float(raw[:-1]) / 100
        elif any(ch in raw for ch in ".eE"):
            value = float(raw)
        else:
            value = int(raw)
    except ValueError:
        raise TamisError(
            f"--keep '{text}' is not a number; give a count (500) or a fraction (0.2 or 20%)"
        ) from None
    if isinstance(value, float) and not 0 < value <= 1:
        raise TamisError(f"--keep {text}: a fraction must be in (0, 1]; give a count for more")
    if isinstance(value, int) and value < 1:
        raise TamisError(f"--keep {text}: would keep nothing; give a count of 1 or more")
    return value
