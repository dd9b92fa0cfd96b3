"""Write the output folder: every file goes to a temporary name first and is renamed into place,
so a killed run never leaves a half-written output behind.

- ``scores.parquet``: one row per input record: ``index``, ``id``, ``status``, ``detail``,
  ``truncated`` and one column per score.
- ``selected.jsonl``: the kept records exactly as read (all original fields), in input order.
- ``rejected.jsonl``: one object per dropped record, in input order:
  ``{"id", "where", "reason", "detail", "record"}`` where ``record`` is the original object
  untouched (or ``"text"`` holding the raw line when it could not be parsed).
- ``manifest.json``: input, configuration, model, versions, counts, timings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tamis.base.files import atomic_open, jsonl_line

INT_COLUMNS = {"index", "prompt_tokens", "response_tokens", "cluster"}
# Written beside the scores when present, read back as row fields, never as score columns.
EXTRA_TEXT = ("junk_signal", "junk_detail")
TEXT_COLUMNS = {"id", "status", "detail", *EXTRA_TEXT}


def write_scores(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = [c for c in EXTRA_TEXT if rows and c in rows[0]]
    fields = [
        pa.field(
            c,
            pa.int64()
            if c in INT_COLUMNS
            else pa.string()
            if c in TEXT_COLUMNS
            else pa.bool_()
            if c == "truncated"
            else pa.float64(),
        )
        for c in ["index", "id", "status", "detail", "truncated", *columns, *extra]
    ]
    schema = pa.schema(fields)
    table = pa.Table.from_pylist(rows, schema=schema)
    with atomic_open(path, "wb") as f:
        pq.write_table(table, f)


def read_scores(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    base = {"index", "id", "status", "detail", "truncated", *EXTRA_TEXT}
    return table.to_pylist(), [c for c in table.column_names if c not in base]


def rejected_item(rid: str | None, where: str, raw: Any, reason: str, detail: str) -> dict:
    """A ``rejected.jsonl`` line: the original object as ``record``, or the raw line as ``text``
    when it could not be parsed."""
    item = {"id": rid, "where": where, "reason": reason, "detail": detail}
    item["record" if isinstance(raw, dict) else "text"] = raw
    return item


def write_selection(out_dir: Path, kept: list[Any], rejected: list[dict[str, Any]]) -> None:
    """Both files or neither: each is written out before either is renamed into place, so a
    full disk leaves the previous selection whole."""
    with (
        atomic_open(out_dir / "selected.jsonl") as sel,
        atomic_open(out_dir / "rejected.jsonl") as rej,
    ):
        for f, rows in ((sel, kept), (rej, rejected)):
            for row in rows:
                f.write(jsonl_line(row))
            f.flush()  # a full disk fails here, before any rename
