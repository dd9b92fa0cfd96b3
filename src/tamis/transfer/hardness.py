"""``tamis transfer A B --score COL``: does a small model's ranking carry over to a larger one?

A and B hold the same records scored by two models (by convention A the small scorer model, B
the larger target model). Each is a tamis ``scores.parquet``, a tamis output folder holding one,
or any ``.csv``/``.parquet`` with an ``id`` column (e.g. published per-record values). Rows are
joined on ``id`` compared as text; a row is used only when its ``status`` (if the file has one)
is ``ok``, its value is finite and the other side has a usable row with the same id. Every other
row is counted under its reason: ``status_not_ok``, ``no_value`` (empty, NaN or infinite),
``no_id``, ``no_match``.

The maths is in :mod:`tamis.base.agreement`; this module reads, prints, and writes
``transfer.json`` and ``transfer.png``.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tamis.base.agreement import Agreement, Joined, agreement, join_on_id
from tamis.base.errors import TamisError
from tamis.base.files import file_sha256
from tamis.scorers import direction_of

# Spearman 0.3 is the usual line between a weak and a moderate correlation. On Gaussian scores
# it means the small model's top 10% shares only ~21% of its records with the larger model's
# top 10% (Jaccard ~0.12 against 0.05 by chance): too little to trust the small model's pick.
WARN_BELOW = 0.3
DEFAULT_TOP = "5,10,20,50"
BASE_COLUMNS = ("index", "id", "status", "detail", "truncated")
DROP_REASONS = ("status_not_ok", "no_id", "no_value", "no_match")
INPUT_HELP = "a tamis output folder, its scores.parquet, or a .csv/.parquet with an 'id' column"


@dataclass
class ScoreColumn:
    """One side's usable (id, value) rows and why the other rows were set aside."""

    path: Path  # as given
    file: Path  # the file actually read
    column: str
    rows: int
    ids: list[str]
    values: np.ndarray
    dropped: Counter = field(default_factory=Counter)

    def describe(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "file": str(self.file),
            "sha256": file_sha256(self.file),
            "column": self.column,
            "rows": self.rows,
            "used": len(self.ids) - self.dropped["no_match"],
            "dropped": {reason: self.dropped[reason] for reason in DROP_REASONS},
        }


def parse_top(text: str) -> tuple[float, ...]:
    """``"5,10,20,50"`` -> (5.0, 10.0, 20.0, 50.0); a trailing % is allowed."""
    out: list[float] = []
    for item in text.split(","):
        raw = item.strip().removesuffix("%")
        try:
            value = float(raw)
        except ValueError:
            value = math.nan
        if not 0 < value <= 100:
            raise TamisError(
                f"--top '{text}': '{item.strip()}' is not a percentage in (0, 100]; "
                f"give e.g. --top {DEFAULT_TOP}"
            )
        if value not in out:
            out.append(value)
    return tuple(out)


def resolve_direction(given: str | None, column_a: str, column_b: str) -> tuple[str, str]:
    """The direction and where it came from: the option, the known column(s), or the default."""
    if given is not None:
        return given, "--direction"
    # direction_of: also learning percentage's p0..pN and an ensemble's per-model columns
    known = {c: d for c in (column_a, column_b) if (d := direction_of(c)) is not None}
    if len(set(known.values())) > 1:
        raise TamisError(
            f"'{column_a}' is better {known[column_a]} but '{column_b}' is better "
            f"{known[column_b]}; give --direction lower or --direction higher"
        )
    if known:
        column, direction = next(iter(known.items()))
        return direction, f"tamis default for {column}"
    return "higher", "default for columns tamis does not know"


def _resolve_file(path: Path, side: str) -> Path:
    if path.is_dir():
        inner = path / "scores.parquet"
        if not inner.is_file():
            raise TamisError(
                f"{side} {path}: folder without scores.parquet; give a 'tamis score' output "
                "folder or the score file itself"
            )
        return inner
    if not path.exists():
        raise TamisError(f"{side} {path}: no such file or folder; give {INPUT_HELP}")
    if path.suffix.lower() not in (".csv", ".parquet"):
        raise TamisError(
            f"{side} {path}: unknown file type '{path.suffix}'; choose .csv or .parquet "
            "(or a tamis output folder)"
        )
    return path


def _read_table(file: Path, column: str, side: str, label: str):
    """Read ``id``, ``column`` and ``status`` (when present) as an Arrow table."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    try:
        if file.suffix.lower() == ".csv":
            with file.open(encoding="utf-8-sig", newline="") as f:
                names = next(csv.reader(f), [])
        else:
            names = pq.read_schema(file).names
    except (OSError, UnicodeDecodeError, csv.Error, pa.ArrowException) as e:
        raise TamisError(f"{side} {file}: cannot be read ({e}); check the file") from None
    if "id" not in names:
        raise TamisError(
            f"{side} {file}: no 'id' column (columns: {', '.join(names) or 'none'}); the two "
            "files are joined on id, so add one holding each record's id"
        )
    if column not in names:
        available = [c for c in names if c not in BASE_COLUMNS]
        raise TamisError(
            f"{side} {file}: no column '{column}'; choose one of: "
            f"{', '.join(available) or 'none'} ({label})"
        )
    wanted = ["id", column] + (["status"] if "status" in names and column != "status" else [])
    try:
        if file.suffix.lower() == ".csv":
            options = pcsv.ConvertOptions(
                include_columns=wanted, column_types={"id": pa.string(), "status": pa.string()}
            )
            return pcsv.read_csv(file, convert_options=options)
        return pq.read_table(file, columns=wanted)
    except pa.ArrowException as e:
        raise TamisError(f"{side} {file}: cannot be read ({e}); check the file") from None


def load_column(path: Path, column: str, side: str, label: str) -> ScoreColumn:
    """Read one side; ``side`` ("A" or "B") and ``label`` (the option) name it in errors."""
    import pyarrow as pa

    file = _resolve_file(Path(path), side)
    table = _read_table(file, column, side, label)
    kind = table.schema.field(column).type
    if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)):
        raise TamisError(f"{side} {file}: column '{column}' holds {kind}, not numbers; {label}")
    ids = table.column("id").cast(pa.string()).to_pylist()
    values = table.column(column).cast(pa.float64()).to_numpy(zero_copy_only=False)
    status = table.column("status").to_pylist() if "status" in table.column_names else None
    dropped: Counter = Counter()
    keep = []
    for i, key in enumerate(ids):
        if status is not None and status[i] != "ok":
            dropped["status_not_ok"] += 1
        elif key is None:
            dropped["no_id"] += 1
        elif not math.isfinite(values[i]):
            dropped["no_value"] += 1
        else:
            keep.append(i)
    used = [ids[i] for i in keep]
    repeated = [key for key, count in Counter(used).items() if count > 1]
    if repeated:
        raise TamisError(
            f"{side} {file}: {len(repeated)} ids appear more than once (first: "
            f"'{repeated[0]}'); ids must be unique to join the two files"
        )
    return ScoreColumn(Path(path), file, column, len(ids), used, values[keep], dropped)


def compare(
    a: ScoreColumn, b: ScoreColumn, percents: tuple[float, ...], direction: str
) -> tuple[Agreement, Joined]:
    """Join on id (recording ``no_match`` drops on both sides) and compute the agreement."""
    joined = join_on_id(a.ids, a.values, b.ids, b.values)
    a.dropped["no_match"] += joined.unmatched_a
    b.dropped["no_match"] += joined.unmatched_b
    if len(joined.ids) < 3:
        raise TamisError(
            f"only {len(joined.ids)} records are in both A and B with a finite value (at least "
            "3 are needed); check that both files score the same records (same ids) and name "
            "the right --score/--score-b columns"
        )
    return agreement(joined.a, joined.b, joined.ids, percents, direction), joined
