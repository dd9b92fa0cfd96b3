"""Records handed over in memory: a list of dicts, a ``pandas.DataFrame``, a Hugging Face
``datasets.Dataset`` or a ``pyarrow.Table``, read as the rows of a file are read (the same format
detection, the same bad-record handling), each named by its row number (``row 0``, ``row 1``...).

None of these libraries is imported here: an object is recognised by its type's module and
methods, so ``pandas`` and ``datasets`` stay optional (``pip install 'tamis[datasets]'``).
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from tamis.base.errors import TamisError


def kind(obj: Any) -> str | None:
    """``"list"``, ``"pandas"``, ``"datasets"`` or ``"arrow"``; None for anything else."""
    if isinstance(obj, (list, tuple)):
        return "list"
    module = type(obj).__module__.split(".")[0]
    if module == "pandas" and hasattr(obj, "to_dict") and hasattr(obj, "columns"):
        return "pandas"
    if module == "datasets" and hasattr(obj, "features") and hasattr(obj, "select"):
        return "datasets"
    if module == "pyarrow" and hasattr(obj, "to_pylist"):
        return "arrow"
    return None


def rows_of(obj: Any) -> list[Any]:
    """The rows of an in-memory dataset, as plain Python values."""
    found = kind(obj)
    if found == "list":
        return [plain(r) for r in obj]
    if found == "pandas":
        return [plain(r) for r in obj.to_dict("records")]
    if found == "datasets":
        return [plain(r) for r in obj.to_list()]
    if found == "arrow":
        return [plain(r) for r in obj.to_pylist()]
    raise TamisError(
        f"cannot read a {type(obj).__name__}: give a file path or URL, a list of dicts, a "
        "pandas.DataFrame, a datasets.Dataset or a pyarrow.Table"
    )


def memory_items(obj: Any) -> tuple[str, list[tuple[str, Any, None]], str]:
    """``(label, items, sha256)``: a label for messages (``DataFrame (7 rows)``), the reader's
    items (``where`` is ``row N``), and a hash of the rows' content."""
    rows = rows_of(obj)
    label = f"{type(obj).__name__} ({len(rows)} rows)"
    digest = hashlib.sha256()
    for r in rows:
        digest.update(json.dumps(r, sort_keys=True, default=str, ensure_ascii=False).encode())
        digest.update(b"\n")
    return label, [(f"row {i}", r, None) for i, r in enumerate(rows)], digest.hexdigest()


def plain(value: Any) -> Any:
    """JSON-like Python values: NumPy scalars and arrays, pandas' missing values (NaN, NaT, NA)
    as None, timestamps and other objects as text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if hasattr(value, "tolist") and type(value).__module__.split(".")[0] == "numpy":
        return plain(value.tolist())  # a NumPy scalar or array
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if type(value).__module__.split(".")[0] == "pandas" and str(value) in ("NaT", "<NA>"):
        return None
    return str(value)
