"""Read ``.jsonl``, ``.json`` (a list), ``.parquet`` and ``.csv`` files into records.

Every input record ends up either as a :class:`~tamis.records.Record` or, with ``skip_bad``, as a
:class:`BadEntry` carrying its reason; without ``skip_bad`` the first bad record raises a
:class:`~tamis.errors.BadRecord` naming the file and line. Nothing is dropped silently:
``len(records) + len(bad) == n_input`` always holds.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamis.errors import BadRecord, TamisError
from tamis.records import FORMATS, Record, detect_format, to_record

EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv")


@dataclass
class BadEntry:
    """An input record that was skipped, and why. ``raw``: the object, or the text if unparsable."""

    index: int
    where: str
    reason: str
    detail: str
    raw: Any


@dataclass
class Dataset:
    path: Path
    format: str
    records: list[Record] = field(default_factory=list)
    bad: list[BadEntry] = field(default_factory=list)

    @property
    def n_input(self) -> int:
        return len(self.records) + len(self.bad)


def read_dataset(path: str | Path, fmt: str | None = None, skip_bad: bool = False) -> Dataset:
    """Read and normalise every record of ``path``.

    ``fmt`` forces one of :data:`~tamis.records.FORMATS`; by default it is detected from the first
    record whose fields fit a format. Duplicate ids are bad records (the later one is the
    duplicate); records without an ``id`` have a content id, so exact duplicates are caught too.
    """
    path = Path(path)
    if fmt is not None and fmt not in FORMATS:
        raise TamisError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if not path.is_file():
        raise TamisError(f"{path}: no such file; check the path")
    suffix = path.suffix.lower()
    if suffix not in EXTENSIONS:
        raise TamisError(
            f"{path}: unsupported file type '{suffix or '(none)'}'; "
            f"use one of: {', '.join(EXTENSIONS)}"
        )
    if path.stat().st_size == 0:
        raise TamisError(f"{path}: the file is empty; point tamis at a file with records")
    items = list(_ITEMS[suffix](path))
    if not items:
        raise TamisError(
            f"{path}: no records found (only blank lines, an empty list or a header); "
            "add records or point tamis at another file"
        )
    if fmt is None:
        fmt = _detect(path, items)
    data = Dataset(path, fmt)
    seen: dict[str, str] = {}
    for index, (where, obj, error) in enumerate(items):
        try:
            if error is not None:
                raise error
            record = to_record(obj, fmt, where)
            if record.id in seen:
                raise _duplicate(record, where, seen[record.id])
        except BadRecord as bad:
            if not skip_bad:
                raise
            raw = obj if error is None else getattr(error, "text", None)
            data.bad.append(BadEntry(index, where, bad.reason, bad.detail, raw))
            continue
        seen[record.id] = where
        record.index = index
        data.records.append(record)
    return data


def _duplicate(record: Record, where: str, first: str) -> BadRecord:
    if record.hashed_id:
        return BadRecord(
            where,
            "duplicate_id",
            f"same prompt and response as {first} (content id '{record.id}')",
            "remove the duplicate, or use --skip-bad to keep the first",
        )
    return BadRecord(
        where,
        "duplicate_id",
        f"id '{record.id}' was already used at {first}",
        "give every record its own id, or use --skip-bad to keep the first",
    )


def _detect(path: Path, items: list) -> str:
    # The first record that fits a format decides, so a bad leading record (say, one missing its
    # output) is reported as what it is, or skipped with --skip-bad, instead of blocking the file.
    first = None
    for where, obj, error in items:
        if error is None and isinstance(obj, dict):
            found = detect_format(obj)
            if found is not None:
                return found
            first = first or (where, obj)
    if first is not None:
        where, obj = first
        raise TamisError(
            f"{where}: cannot tell the format from fields {sorted(obj)[:8]}; expected "
            "instruction/output (alpaca), prompt/response, conversations (sharegpt) or "
            "messages; rename the fields or pass --format"
        )
    raise TamisError(
        f"{path}: no record is a JSON object, so the format cannot be detected; "
        "fix the file or pass --format"
    )


Item = tuple[str, Any, BadRecord | None]


def _jsonl_items(path: Path) -> Iterator[Item]:
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            where = f"{path}:{lineno}"
            if lineno == 1 and line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            if not line.strip():
                continue
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                yield (
                    where,
                    None,
                    _bad_text(
                        where,
                        "bad_encoding",
                        f"not valid UTF-8 at byte {e.start}",
                        "re-encode the file as UTF-8 (e.g. iconv -t UTF-8)",
                        line.rstrip(b"\r\n"),
                    ),
                )
                continue
            try:
                yield where, json.loads(text), None
            except json.JSONDecodeError as e:
                yield (
                    where,
                    None,
                    _bad_text(
                        where,
                        "bad_json",
                        f"invalid JSON ({e.msg} at column {e.colno})",
                        "fix the line or use --skip-bad",
                        text.rstrip("\r\n"),
                    ),
                )


def _bad_text(where: str, reason: str, message: str, fix: str, text: Any) -> BadRecord:
    bad = BadRecord(where, reason, message, fix)
    bad.text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return bad


def _read_text(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TamisError(
            f"{path}:{line}: not valid UTF-8 (byte {e.start}); re-encode the file as UTF-8 "
            "(e.g. iconv -t UTF-8)"
        ) from None


def _json_items(path: Path) -> Iterator[Item]:
    text = _read_text(path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        hint = (
            " (this looks like JSON Lines: rename the file to .jsonl)"
            if e.msg == "Extra data"
            else ""
        )
        raise TamisError(
            f"{path}:{e.lineno}: invalid JSON ({e.msg} at column {e.colno}){hint}; fix the file"
        ) from None
    if isinstance(value, dict):
        for key in ("data", "records", "examples"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            raise TamisError(
                f"{path}: expected a JSON list of records, got an object; "
                "wrap the records in [...] or save them as .jsonl"
            )
    if not isinstance(value, list):
        raise TamisError(
            f"{path}: expected a JSON list of records, got {type(value).__name__}; "
            "save the records as a list [...] or one per line as .jsonl"
        )
    for i, obj in enumerate(value):
        yield f"{path}: item {i}", obj, None


def _csv_items(path: Path) -> Iterator[Item]:
    reader = csv.DictReader(io.StringIO(_read_text(path), newline=""))
    if not reader.fieldnames:
        raise TamisError(f"{path}: the CSV file has no header row; add one naming the columns")
    for row in reader:
        # DictReader puts surplus cells under None: a row with more cells than the header.
        where = f"{path}:{reader.line_num}"
        if None in row:
            yield (
                where,
                None,
                _bad_text(
                    where,
                    "bad_csv",
                    "row has more cells than the header",
                    "quote cells that contain commas",
                    json.dumps(row[None]),
                ),
            )
            continue
        yield where, row, None


def _parquet_items(path: Path) -> Iterator[Item]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise TamisError(f"{path}: not a readable Parquet file ({e}); check the file") from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{path}: row {i}", _plain(row), None


def _plain(value: Any) -> Any:
    # Parquet can hold types JSON cannot (bytes, dates); keep them printable in the outputs.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


_ITEMS = {
    ".jsonl": _jsonl_items,
    ".json": _json_items,
    ".csv": _csv_items,
    ".parquet": _parquet_items,
}
