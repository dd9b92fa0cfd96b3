"""Raw items from each file type (JSON Lines, JSON, CSV, Parquet), with the line or row each came
from and a clear reason for each one that cannot be read."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tamis.base.errors import BadRecord, TamisError
from tamis.data.records import (
    json_type,
)

# A JSON escape of a UTF-16 surrogate: a pair is one character, but a lone one cannot be written
# as UTF-8, so such a record would crash every output file it went to.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")
_SURROGATE = re.compile("[\ud800-\udfff]")
Item = tuple[str, Any, BadRecord | None]


def jsonl_items(path: Path, name: str) -> Iterator[Item]:
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


def json_items(path: Path, name: str) -> Iterator[Item]:
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


def csv_items(path: Path, name: str) -> Iterator[Item]:
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


def parquet_items(path: Path, name: str) -> Iterator[Item]:
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


def arrow_items(path: Path, name: str) -> Iterator[Item]:
    """Rows of an Arrow IPC file (``datasets.save_to_disk`` writes the stream form)."""
    import pyarrow as pa

    try:
        with pa.memory_map(str(path)) as source:
            try:
                table = pa.ipc.open_stream(source).read_all()
            except pa.ArrowInvalid:
                source.seek(0)
                table = pa.ipc.open_file(source).read_all()
    except Exception as e:  # pyarrow raises several types for a damaged file
        raise TamisError(
            f"{name}: not a readable Arrow file ({e}); save the dataset again"
        ) from None
    for i, row in enumerate(table.to_pylist()):
        yield f"{name}: row {i}", _plain(row), None
