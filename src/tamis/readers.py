"""Read ``.jsonl``, ``.json`` (a list), ``.parquet`` and ``.csv`` files, local or at a URL
(:mod:`tamis.remote`), into records.

Every input record ends up either as a :class:`~tamis.records.Record` or, with ``skip_bad``, as a
:class:`BadEntry` carrying its reason; without ``skip_bad`` the first bad record raises a
:class:`~tamis.errors.BadRecord` naming the file and line. Nothing is dropped silently:
``len(records) + len(bad) == n_input`` always holds.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamis.errors import BadRecord, TamisError
from tamis.records import (
    FORMATS,
    Record,
    check_object,
    detect_format,
    json_type,
    to_record,
)
from tamis.remote import fetch, is_url, shown, url_suffix

EXTENSIONS = (".jsonl", ".json", ".parquet", ".csv")
# A JSON escape of a UTF-16 surrogate: a pair is one character, but a lone one cannot be written
# as UTF-8, so such a record would crash every output file it went to.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")


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
    """The records read from ``path`` (the file read, or the URL as given) in ``format``.
    ``sha256``: the hash of a URL's bytes as read (``None`` for a local file)."""

    path: Path | str
    format: str
    records: list[Record] = field(default_factory=list)
    bad: list[BadEntry] = field(default_factory=list)
    sha256: str | None = None

    @property
    def n_input(self) -> int:
        return len(self.records) + len(self.bad)


def read_dataset(
    path: str | Path, fmt: str | None = None, skip_bad: bool = False, *, name: str | None = None
) -> Dataset:
    """Read and normalise every record of ``path``.

    ``fmt`` forces one of :data:`~tamis.records.FORMATS`; by default it is detected from the first
    record whose fields fit a format. Duplicate ids are bad records (the later one is the
    duplicate); records without an ``id`` have a content id, so exact duplicates are caught too.
    A file whose every record is bad raises :class:`TamisError` even with ``skip_bad``: there is
    nothing to curate.

    ``path`` may be a URL (``s3://bucket/data.jsonl``, ``gs://``, ``hdfs://``, ``file://``, or
    any fsspec URL such as ``memory://``): its object is copied to a temporary file first (see
    :mod:`tamis.remote`), messages name the URL, and ``Dataset.sha256`` is the hash of its bytes.
    ``name`` replaces the path in messages (to read such a copy under its URL's name).
    """
    if fmt is not None and fmt not in FORMATS:
        raise TamisError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    if is_url(path):
        _check_suffix(shown(path), url_suffix(path))  # before copying a file tamis cannot read
        with fetch(path) as copy:
            data = _read_file(copy.path, shown(path), fmt, skip_bad)
        data.path, data.sha256 = path, copy.sha256
        return data
    path = Path(path)
    return _read_file(path, str(path) if name is None else name, fmt, skip_bad)


def read_again(info: dict[str, Any], skip_bad: bool) -> Dataset:
    """The input a manifest's ``input`` section names (``path``, ``sha256``, ``format``), read
    again once its bytes are checked unchanged. A file that is gone or changed, or a URL whose
    object changed, is a :class:`TamisError` naming it; the hash is checked before parsing, so a
    changed file that no longer parses is reported as changed."""
    from tamis.files import file_sha256

    expected, where = info.get("sha256"), info.get("path", "")
    if is_url(where):
        url = shown(where)
        with fetch(where) as copy:
            if expected and copy.sha256 != expected:
                raise TamisError(
                    f"{url}: the object changed since it was scored; run tamis score again"
                )
            return read_dataset(copy.path, info.get("format"), skip_bad, name=url)
    path = Path(where)
    if not path.is_file():
        raise TamisError(f"{path}: the scored input file is gone; restore it or score again")
    if expected and file_sha256(path) != expected:
        raise TamisError(f"{path}: the file changed since it was scored; run tamis score again")
    return read_dataset(path, info.get("format"), skip_bad)


def _check_suffix(name: str, suffix: str) -> None:
    if suffix not in EXTENSIONS:
        raise TamisError(
            f"{name}: unsupported file type '{suffix or '(none)'}'; "
            f"use one of: {', '.join(EXTENSIONS)}"
        )


def _read_file(path: Path, name: str, fmt: str | None, skip_bad: bool) -> Dataset:
    """:func:`read_dataset` of a local file; messages call it ``name``."""
    if not path.is_file():
        raise TamisError(f"{name}: no such file; check the path")
    suffix = path.suffix.lower()
    _check_suffix(name, suffix)
    if path.stat().st_size == 0:
        raise TamisError(f"{name}: the file is empty; point tamis at a file with records")
    items = list(_ITEMS[suffix](path, name))
    if not items:
        raise TamisError(
            f"{name}: no records found (only blank lines, an empty list or a header); "
            "add records or point tamis at another file"
        )
    if fmt is None:
        fmt = _detect(name, items, skip_bad)
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
    if not data.records:  # only with skip_bad: nothing is left to curate
        first = data.bad[0]
        raise TamisError(
            f"{name}: every record is bad ({len(data.bad)} read; the first, {first.where}: "
            f"{first.detail}); fix the file"
        )
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


def _detect(name: str, items: list, skip_bad: bool) -> str:
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
    # No record is a JSON object: every one is unreadable, or a list, a string, a number...
    where, obj, error = items[0]
    if error is None:
        try:
            check_object(obj, where)
        except BadRecord as bad:
            error = bad
    if not skip_bad:
        raise error
    raise TamisError(
        f"{name}: no record is a JSON object ({len(items)} read; the first, {error.where}: "
        f"{error.detail}); fix the file"
    )


Item = tuple[str, Any, BadRecord | None]


def _jsonl_items(path: Path, name: str) -> Iterator[Item]:
    with path.open("rb") as f:
        for lineno, line in enumerate(f, start=1):
            where = f"{name}:{lineno}"
            if line.startswith(b"\xef\xbb\xbf"):  # line 1, or the start of a file appended
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
            text = text.rstrip("\r\n")
            try:
                value = json.loads(text)
            except (ValueError, RecursionError) as e:
                message, fix = _json_problem(e, lineno, text)
                yield where, None, _bad_text(where, "bad_json", message, fix, text)
                continue
            if _SURROGATE_ESCAPE.search(text) and _has_surrogate(value):
                yield where, None, _surrogate(where, text)
                continue
            yield where, value, None


def _json_problem(e: Exception, lineno: int, text: str) -> tuple[str, str]:
    """What is wrong with a JSON Lines line, and the fix."""
    fix = "fix the line or use --skip-bad"
    if isinstance(e, RecursionError):
        return "invalid JSON (nested too deeply to read)", fix
    if not isinstance(e, json.JSONDecodeError):  # int() refuses a number of over 4300 digits
        return "invalid JSON (a number has too many digits to read)", fix
    message = f"invalid JSON ({_json_error(e)})"
    if e.msg == "Extra data":
        fix = "put one record per line (a bare CR is not a line end), or use --skip-bad"
    elif lineno == 1 and text.lstrip().startswith("["):
        fix = "the file looks like one JSON list: rename it to .json"
    return message, fix


def _json_error(e: json.JSONDecodeError) -> str:
    # Some messages end in "at" already: "Unterminated string starting at".
    return f"{e.msg}{'' if e.msg.endswith(' at') else ' at'} column {e.colno}"


def _has_surrogate(value: Any) -> bool:
    stack = [value]  # not recursive: the value may be nested nearly as deep as json allows
    while stack:
        v = stack.pop()
        if isinstance(v, str) and _SURROGATE.search(v):
            return True
        if isinstance(v, dict):
            stack.extend(v)
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)
    return False


def _surrogate(where: str, text: str) -> BadRecord:
    return _bad_text(
        where,
        "bad_encoding",
        "text holds a lone UTF-16 surrogate escape (such as \\ud800), which is not valid Unicode",
        "fix the escape (a character outside the BMP is a pair, e.g. \\ud83d\\ude00) "
        "or use --skip-bad",
        text,
    )


def _bad_text(where: str, reason: str, message: str, fix: str, text: Any) -> BadRecord:
    bad = BadRecord(where, reason, message, fix)
    bad.text = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return bad


def _read_text(path: Path, name: str) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise TamisError(
            f"{name}:{line}: not valid UTF-8 (byte {e.start}); re-encode the file as UTF-8 "
            "(e.g. iconv -t UTF-8)"
        ) from None


def _json_items(path: Path, name: str) -> Iterator[Item]:
    text = _read_text(path, name)
    try:
        value = json.loads(text)
    except RecursionError:
        raise TamisError(
            f"{name}: invalid JSON (nested too deeply to read); fix the file"
        ) from None
    except json.JSONDecodeError as e:
        hint = (
            " (this looks like JSON Lines: rename the file to .jsonl)"
            if e.msg == "Extra data"
            else ""
        )
        raise TamisError(
            f"{name}:{e.lineno}: invalid JSON ({_json_error(e)}){hint}; fix the file"
        ) from None
    except ValueError:  # int() refuses a number of over 4300 digits
        raise TamisError(
            f"{name}: invalid JSON (a number has too many digits to read); fix the file"
        ) from None
    if isinstance(value, dict):
        for key in ("data", "records", "examples"):
            if isinstance(value.get(key), list):
                value = value[key]
                break
        else:
            raise TamisError(
                f"{name}: expected a JSON list of records, got an object; "
                "wrap the records in [...] or save them as .jsonl"
            )
    if not isinstance(value, list):
        raise TamisError(
            f"{name}: expected a JSON list of records, got {json_type(value)}; "
            "save the records as a list [...] or one per line as .jsonl"
        )
    check = _SURROGATE_ESCAPE.search(text) is not None
    for i, obj in enumerate(value):
        where = f"{name}: item {i}"
        if check and _has_surrogate(obj):
            yield where, None, _surrogate(where, json.dumps(obj))  # escaped: writable
            continue
        yield where, obj, None


def _csv_items(path: Path, name: str) -> Iterator[Item]:
    # One cell may hold a whole long record; the csv module's default limit is 128 KiB.
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    # strict: an unclosed quote is an error, not a cell that swallows the rest of the file.
    rows = csv.reader(io.StringIO(_read_text(path, name), newline=""), strict=True)
    start = 1  # the line a row starts on; a quoted cell can hold line breaks
    try:
        header = next(rows, None)
        if not header:
            raise TamisError(f"{name}: the CSV file has no header row; add one naming the columns")
        twice = sorted({h for h in header if header.count(h) > 1})
        if twice:
            raise TamisError(
                f"{name}:1: the header names {', '.join(map(repr, twice))} more than once; "
                "give every column its own name"
            )
        start = rows.line_num + 1
        for cells in rows:
            where = f"{name}:{start}"
            start = rows.line_num + 1
            if not cells:
                continue  # a blank line
            if len(cells) > len(header):
                yield (
                    where,
                    None,
                    _bad_text(
                        where,
                        "bad_csv",
                        f"row has {len(cells)} cells, the header {len(header)}",
                        "quote cells that contain commas",
                        json.dumps(cells, ensure_ascii=False),
                    ),
                )
                continue
            padded = cells + [None] * (len(header) - len(cells))  # DictReader's restval
            yield where, dict(zip(header, padded, strict=True)), None
    except csv.Error as e:
        raise TamisError(
            f"{name}:{start}: not valid CSV ({e}); close the quoted cell that starts on this "
            'row, and double every quote inside a quoted cell ("")'
        ) from None


def _parquet_items(path: Path, name: str) -> Iterator[Item]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        problem = str(e).replace(str(path), name)  # pyarrow names the file: a URL's local copy
        raise TamisError(
            f"{name}: not a readable Parquet file ({problem}); check the file"
        ) from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{name}: row {i}", _plain(row), None


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
