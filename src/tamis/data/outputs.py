"""Write the output folder: every file goes to a temporary name first and is renamed into place,
so a killed run never leaves a half-written output behind.

- ``scores.parquet``: one row per input record: ``index``, ``id``, ``status``, ``detail``,
  ``truncated`` and one column per score.
- ``selected.jsonl``: the kept records exactly as read (all original fields), in input order.
- ``rejected.jsonl``: one object per dropped record, in input order:
  ``{"id", "where", "reason", "detail", "record"}`` where ``record`` is the original object
  untouched (or ``"text"`` holding the raw line when it could not be parsed).
- ``manifest.json``: input, configuration, model, versions, counts, timings.

With ``--output-format parquet``, ``selected.parquet`` and ``rejected.parquet`` replace the two
JSON Lines files: the kept records with the input's own columns (and, for a Parquet input, its
column types where the values still fit them), and the dropped ones with those columns plus
``tamis_id``, ``tamis_where``, ``tamis_reason``, ``tamis_detail`` (and ``tamis_text``, the raw
line of a record that could not be parsed). ``pandas.read_parquet`` or
``datasets.Dataset.from_parquet`` opens either in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tamis.base.files import atomic_open, jsonl_line

INT_COLUMNS = {"index", "prompt_tokens", "response_tokens", "cluster"}
# Written beside the scores when present, read back as row fields, never as score columns.
EXTRA_TEXT = ("junk_signal", "junk_detail", "dup_exact_of", "dup_near_of")
TEXT_COLUMNS = {"id", "status", "detail", *EXTRA_TEXT}


def write_scores(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    extra = [c for c in EXTRA_TEXT if any(c in row for row in rows)]
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


OUTPUT_FORMATS = ("jsonl", "parquet")
# The rejected file's own columns in Parquet (prefixed: they must not clash with the input's).
REJECTED_FIELDS = ("id", "where", "reason", "detail", "text")


def write_selection(
    out_dir: Path,
    kept: list[Any],
    rejected: list[dict[str, Any]],
    output_format: str = "jsonl",
    schema: Any = None,
) -> None:
    """Both files or neither: each is written out before either is renamed into place, so a
    full disk leaves the previous selection whole. The files of the other format, left by an
    earlier selection, are removed (a folder holds one selection). ``schema``: the input's
    Arrow schema, kept for Parquet output where the values fit it."""
    if output_format == "parquet":
        _write_parquet_selection(out_dir, kept, rejected, schema)
        other = "jsonl"
    else:
        _write_jsonl_selection(out_dir, kept, rejected)
        other = "parquet"
    for name in (f"selected.{other}", f"rejected.{other}"):
        (out_dir / name).unlink(missing_ok=True)


def rejected_rows(item: dict[str, Any]) -> dict[str, Any]:
    """A ``rejected.jsonl`` item as a ``rejected.parquet`` row: the record's fields, then the
    ``tamis_`` fields."""
    record = item.get("record") if isinstance(item.get("record"), dict) else {}
    return {**record, **{f"tamis_{k}": item.get(k) for k in REJECTED_FIELDS}}


def read_rejected(out_dir: Path) -> list[dict[str, Any]] | None:
    """The rejected items of a folder (``id``, ``where``, ``reason``, ``detail``, ``record``),
    from ``rejected.jsonl`` or ``rejected.parquet``; None when neither exists."""
    from tamis.base.files import read_jsonl

    if (out_dir / "rejected.jsonl").is_file():
        return read_jsonl(out_dir / "rejected.jsonl")
    if not (out_dir / "rejected.parquet").is_file():
        return None
    import pyarrow.parquet as pq

    items = []
    for row in pq.read_table(out_dir / "rejected.parquet").to_pylist():
        own = {k: row.pop(f"tamis_{k}", None) for k in REJECTED_FIELDS}
        raw = row if own["text"] is None else own["text"]
        items.append(rejected_item(own["id"], own["where"], raw, own["reason"], own["detail"]))
    return items


def _table(rows: list[dict[str, Any]], schema: Any):
    """An Arrow table of ``rows``, in ``schema`` when the values fit it, else inferred."""
    import pyarrow as pa

    if schema is not None and rows and set(rows[0]) == set(schema.names):
        try:
            return pa.Table.from_pylist(rows, schema=schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
            pass  # a value tamis read as text (a date, say) no longer fits: inferred types
    try:
        return pa.Table.from_pylist(rows)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as e:
        from tamis.base.errors import TamisError

        raise TamisError(
            f"these records cannot be one Parquet table ({e}): a column holds values of "
            "different types; use --output-format jsonl"
        ) from None


def _write_parquet_selection(out_dir: Path, kept: list, rejected: list, schema: Any) -> None:
    import pyarrow.parquet as pq

    kept_rows = [r if isinstance(r, dict) else {"value": r} for r in kept]
    tables = [_table(kept_rows, schema), _table([rejected_rows(r) for r in rejected], None)]
    with (
        atomic_open(out_dir / "selected.parquet", "wb") as sel,
        atomic_open(out_dir / "rejected.parquet", "wb") as rej,
    ):
        for f, table in zip((sel, rej), tables, strict=True):
            pq.write_table(table, f)
            f.flush()


def _write_jsonl_selection(out_dir: Path, kept: list, rejected: list) -> None:
    with (
        atomic_open(out_dir / "selected.jsonl") as sel,
        atomic_open(out_dir / "rejected.jsonl") as rej,
    ):
        for f, rows in ((sel, kept), (rej, rejected)):
            for row in rows:
                f.write(jsonl_line(row))
            f.flush()  # a full disk fails here, before any rename
