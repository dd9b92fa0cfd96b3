"""``-v``: the details behind the summary lines of ``score``, ``run`` and ``select``, read back from
the output folder (the manifest, the scores, the rejected records), so they say what was done."""

from __future__ import annotations

import math
import sys
from pathlib import Path

SHOWN_DROPS = 5  # junk records listed with their detail


def add_verbosity(p) -> None:
    """``-q`` and ``-v``, one or the other."""
    from tamis.cli.common import add_quiet

    group = p.add_mutually_exclusive_group()
    add_quiet(group)
    group.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="after the summary, the details: models and templates, input, timings, each score's "
        "spread, the selection's settings and the first junk records dropped, with the signal",
    )


def say(line: str) -> None:
    print(f"  {line}", file=sys.stderr)


def score_details(manifest: dict, out: Path) -> None:
    """Models, input, scoring work and each score column's spread."""
    import pyarrow.parquet as pq

    for m in manifest["models"]:
        say(
            f"model {m['name']}: {m['source']} (sha256 {m['sha256'][:12]}), {m['device']}, "
            f"{m['precision']}, template {m['template']}"
        )
        if m.get("system_prompt"):
            say(f"system prompt its chat template adds: {m['system_prompt']!r}")
    i, s = manifest["input"], manifest["score"]
    sha = i["sha256"][:12]
    say(f"input {i['path']}: {i['records']} records, format {i['format']}, sha256 {sha}")
    statuses = ", ".join(f"{k} {v}" for k, v in s["status_counts"].items())
    say(f"records by status: {statuses}; prompts cut to fit: {s['truncated']}")
    tokens = f", {s['tokens']:,} tokens" if s.get("tokens") else ""
    say(
        f"scoring: {s['sequences']} sequences ({s['computed']} computed, {s['from_cache']} from "
        f"cache){tokens}, {s['job_wall_s']:.1f} s"
    )
    table = pq.read_table(out / "scores.parquet")
    for column in s["columns"]:
        if column not in table.column_names:
            continue
        values = sorted(
            v for v in table.column(column).to_pylist()
            if isinstance(v, (int, float)) and math.isfinite(v)
        )  # fmt: skip
        if values:
            low, mid, high = (values[round(q * (len(values) - 1))] for q in (0.05, 0.5, 0.95))
            say(
                f"{column}: median {mid:.4g}, 5%-95% {low:.4g} to {high:.4g} ({len(values)} values)"
            )


def selection_details(manifest: dict, out: Path) -> None:
    """The selection's settings, what was asked and kept, and the first junk records dropped."""
    import json

    sel, c = manifest["selection"], manifest["counts"]
    settings = ", ".join(
        f"{k} {v}" for k, v in sel.items() if k not in ("wall_s", "output_format") and _said(v)
    )
    say(f"selection: {settings}")
    if sel.get("keep_tokens") is not None:
        asked = f"{sel['keep_tokens']:,} training tokens"
    elif sel.get("keep") is not None:
        asked = f"--keep {sel['keep']:g}: {c.get('asked')} of {c.get('scored')} scored records"
    else:
        asked = "every record that passes the filters"
    say(f"asked for {asked}; kept {c['selected']}")
    ext = sel.get("output_format", "jsonl")
    path = out / f"rejected.{ext}"
    if ext != "jsonl" or not path.is_file():
        return
    shown = 0
    with path.open(encoding="utf-8") as f:
        for line in f:
            item = json.loads(line)
            if str(item.get("reason", "")).startswith("junk_"):
                say(f"dropped {item.get('id')}: {item['reason']}: {item.get('detail', '')}")
                shown += 1
                if shown == SHOWN_DROPS:
                    break  # the rest of a large rejected file need not be read


def _said(value) -> bool:
    """Whether a setting is worth a word: not unset, off or empty (0 is a value: a seed, a cut)."""
    return value is not None and value is not False and value not in ((), [])
