"""Read ``.jsonl``, ``.json`` (a list), ``.parquet`` and ``.csv`` files, local or at a URL
(:mod:`tamis.data.remote`), into records.

Every input record ends up either as a :class:`~tamis.data.records.Record` or, with ``skip_bad``, as
a :class:`BadEntry` carrying its reason; without ``skip_bad`` the first bad record raises a
:class:`~tamis.base.errors.BadRecord` naming the file and line. Nothing is dropped silently:
``len(records) + len(bad) == n_input`` always holds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tamis.base.errors import BadRecord, TamisError
from tamis.data.memory import memory_items
from tamis.data.parsers import Item, arrow_items, csv_items, json_items, jsonl_items, parquet_items
from tamis.data.records import (
    FORMATS,
    Record,
    check_object,
    detect_format,
    mapped,
    to_record,
)
from tamis.data.remote import fetch, is_url, shown, url_name
from tamis.data.sources import (
    Part,
    check_type,
    exists,
    file_type,
    local_parts,
    magic,
    opened,
    source_sha256,
)


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
    fields: tuple[tuple[str, str], ...] = ()  # (field, column): read field from column

    @property
    def n_input(self) -> int:
        return len(self.records) + len(self.bad)


def read_dataset(
    path: Any,
    fmt: str | None = None,
    skip_bad: bool = False,
    *,
    name: str | None = None,
    fields: Sequence[Sequence[str]] = (),
) -> Dataset:
    """Read and normalise every record of ``path``.

    ``fmt`` forces one of :data:`~tamis.data.records.FORMATS`; by default it is detected from the
    first record whose fields fit a format. Duplicate ids are bad records (the later one is the
    duplicate); records without an ``id`` have a content id, so exact duplicates are caught too.
    A file whose every record is bad raises :class:`TamisError` even with ``skip_bad``: there is
    nothing to curate.

    ``path`` may be a URL (``s3://bucket/data.jsonl``, ``gs://``, ``hdfs://``, ``file://``, or
    any fsspec URL such as ``memory://``): its object is copied to a temporary file first (see
    :mod:`tamis.data.remote`), messages name the URL, and ``Dataset.sha256`` is the hash of its
    bytes. ``name`` replaces the path in messages (to read such a copy under its URL's name).

    ``path`` may also be the records themselves: a list of dicts, a ``pandas.DataFrame``, a
    ``datasets.Dataset`` or a ``pyarrow.Table`` (see :mod:`tamis.data.memory`); messages then
    name each record by its row (``row 3``), and ``Dataset.sha256`` hashes the rows' content.

    ``fields``: (field, column) pairs, each field tamis reads (``instruction``, ``output``,
    ``id``...) taken from the user's column of another name (``--field output=answer``,
    ``--id-field uid``); each record's ``raw`` keeps the user's own names.
    """
    if fmt is not None and fmt not in FORMATS:
        raise TamisError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}")
    fields = _check_fields(fields)
    if not isinstance(path, (str, Path)):  # a list of dicts, a DataFrame, a datasets.Dataset
        label, items, sha256 = memory_items(path)
        data = _read_items(_mapped(items, fields), name or label, fmt, skip_bad, name or label)
        data.sha256, data.fields = sha256, fields
        return data
    if is_url(path):
        suffix, compression = file_type(url_name(path))
        check_type(shown(path), suffix, compression)  # before copying a file tamis cannot read
        with fetch(path) as copy:
            return _read_copy(copy, path, fmt, skip_bad, fields)
    path = Path(path)
    name = str(path) if name is None else name
    data = _read_parts(local_parts(path, name), name, fmt, skip_bad, path, fields)
    data.fields = fields
    return data


def _check_fields(fields: Sequence[Sequence[str]]) -> tuple[tuple[str, str], ...]:
    pairs = tuple((str(name), str(column)) for name, column in fields or ())
    names = [name for name, _ in pairs]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise TamisError(f"--field {twice[0]} is given twice; map each field from one column")
    return pairs


def _mapped(items: list[Item], fields: tuple[tuple[str, str], ...]) -> list[Item]:
    """Items whose objects carry tamis' field names, each with its original object after it."""
    return [(where, mapped(obj, fields), error, obj) for where, obj, error, *_ in items]


def read_again(info: dict[str, Any], skip_bad: bool) -> Dataset:
    """The input a manifest's ``input`` section names (``path``, ``sha256``, ``format``), read
    again once its bytes are checked unchanged. A file that is gone or changed, or a URL whose
    object changed, is a :class:`TamisError` naming it; the hash is checked before parsing, so a
    changed file that no longer parses is reported as changed."""
    expected, where = info.get("sha256"), info.get("path", "")
    if is_url(where):
        url = shown(where)
        with fetch(where) as copy:
            if expected and copy.sha256 != expected:
                raise TamisError(
                    f"{url}: the object changed since it was scored; run tamis score again"
                )
            return _read_copy(copy, where, info.get("format"), skip_bad, info.get("fields", ()))
    path = Path(where)
    if not exists(path):
        raise TamisError(f"{path}: the scored input file is gone; restore it or score again")
    if expected and source_sha256(path) != expected:
        raise TamisError(f"{path}: the file changed since it was scored; run tamis score again")
    return read_dataset(path, info.get("format"), skip_bad, fields=info.get("fields", ()))


def _read_copy(copy, url: str, fmt: str | None, skip_bad: bool, fields=()) -> Dataset:
    """A URL's object from its local copy: the file type from the URL's name (the copy's name
    keeps only the last suffix: ``.gz`` of ``data.jsonl.gz``), messages naming the URL; ``fields``
    checked and kept on the dataset."""
    suffix, compression = file_type(url_name(url))
    check_type(shown(url), suffix, compression)
    part = Part(copy.path, shown(url), suffix, magic(copy.path) or compression)
    fields = _check_fields(fields)
    data = _read_parts([part], shown(url), fmt, skip_bad, None, fields)
    data.path, data.sha256, data.fields = url, copy.sha256, fields
    return data


def _read_parts(
    parts: list[Part], name: str, fmt: str | None, skip_bad: bool, path: Path | None = None,
    fields: tuple[tuple[str, str], ...] = (),
) -> Dataset:  # fmt: skip
    """:func:`read_dataset` of local parts (one file, or a folder's); messages call the whole
    ``name`` and each record by its part's name and line or row."""
    items: list[Item] = []
    for part in parts:
        if part.path.stat().st_size == 0:
            if len(parts) == 1:
                raise TamisError(f"{name}: the file is empty; point tamis at a file with records")
            continue  # an empty part of a folder holds no record
        with opened(part) as plain:
            items.extend(_ITEMS[part.suffix](plain, part.name))
    if not items:
        raise TamisError(
            f"{name}: no records found (only blank lines, an empty list or a header); "
            "add records or point tamis at another file"
        )
    path = path if path is not None else parts[0].path
    return _read_items(_mapped(items, fields), name, fmt, skip_bad, path)


def _read_items(
    items: list[Item], name: str, fmt: str | None, skip_bad: bool, path: Path | str
) -> Dataset:
    """Records from raw items: the format detected (unless given), ids checked, bad records
    raised or (``skip_bad``) kept as :class:`BadEntry` with their reason."""
    if not items:
        raise TamisError(f"{name}: no records found; add records")
    if fmt is None:
        fmt = _detect(name, items, skip_bad)
    data = Dataset(path, fmt)
    seen: dict[str, str] = {}
    for index, (where, obj, error, *own) in enumerate(items):
        try:
            if error is not None:
                raise error
            record = to_record(obj, fmt, where)
            if own:  # read under a field mapping: the user's object, with the user's names
                record.raw = own[0]
            if record.id in seen:
                raise _duplicate(record, where, seen[record.id])
        except BadRecord as bad:
            if not skip_bad:
                raise
            raw = (own[0] if own else obj) if error is None else getattr(error, "text", None)
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
    for where, obj, error, *_ in items:
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
            "messages; map your fields to these names (--field instruction=question --field "
            "output=answer) or pass --format"
        )
    # No record is a JSON object: every one is unreadable, or a list, a string, a number...
    where, obj, error, *_ = items[0]
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


_ITEMS = {
    ".arrow": arrow_items,
    ".jsonl": jsonl_items,
    ".json": json_items,
    ".csv": csv_items,
    ".parquet": parquet_items,
}
