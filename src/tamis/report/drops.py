"""The records a run set aside, for ``report.html``: dropped as junk (with the signal that
fired), dropped by the selection (filters, the budget...), and not scored at all."""

from __future__ import annotations

from collections import Counter

from tamis.report.data import Curation
from tamis.report.html import Column, Table
from tamis.report.html import render_table as table_html

UNSCORED = 500  # most records listed in the table of records that could not be scored
DROPPED = 20_000  # most records listed in the table of dropped records (rejected.jsonl: all)


def junk_section(cur: Curation) -> str:
    """Every record the junk filter dropped, with the signal that fired and its value."""
    items = [i for i in cur.items if i.reason.startswith("junk_")]
    if not items:
        return ""
    columns = [Column("id"), Column("signal"), Column("junk", "number"), Column("why", "long")]
    columns += [Column("prompt", "long"), Column("response", "long")]
    rows = [[i.id, i.reason[5:], i.scores.get("junk"), i.junk, i.prompt, i.response] for i in items]
    counts = Counter(i.reason[5:] for i in items)
    caption = f"{len(items)} records dropped as junk: " + ", ".join(
        f"{signal} {n}" for signal, n in counts.most_common()
    )
    table = Table("junk-table", columns, rows, caption=caption)
    return f'<section id="junk"><h2>Dropped as junk</h2>{table_html(table)}</section>'


def dropped_section(cur: Curation) -> str:
    """Every record the selection dropped for another reason than junk (filters, the budget,
    too similar...), with its reason and score: each can be found, not only the ten at each end."""
    items = [
        i for i in cur.items
        if i.outcome == "dropped" and i.status == "ok" and not i.reason.startswith("junk_")
    ]  # fmt: skip
    if not items:
        return ""
    by = (cur.selection or {}).get("by")
    by = by if by in cur.columns else None
    columns = [Column("input index", "number"), Column("id"), Column("reason")]
    columns += [Column(by, "number")] if by else []
    columns += [Column("prompt", "long"), Column("response", "long")]
    rows = [
        [i.index, i.id, i.reason, *([i.scores.get(by)] if by else []), i.prompt, i.response]
        for i in items[:DROPPED]
    ]
    counts = Counter(i.reason for i in items)
    caption = f"{len(items)} records dropped: " + ", ".join(
        f"{reason} {n}" for reason, n in counts.most_common()
    )
    if len(items) > DROPPED:
        caption += f"; the first {DROPPED:,} shown, rejected.jsonl holds every one"
    table = Table("dropped-table", columns, rows, caption=caption)
    return f'<section id="dropped"><h2>Every dropped record</h2>{table_html(table)}</section>'


def unscored_section(cur: Curation) -> str:
    """The records that were not scored (bad input, ``too_long``) with their reason and text."""
    items = [i for i in cur.items if i.status != "ok"]
    if not items:
        return ""
    columns = [Column("input index", "number"), Column("id"), Column("status")]
    columns += [Column("prompt", "long"), Column("response or raw text", "long")]
    rows = [[i.index, i.id, i.status, i.prompt, i.response] for i in items[:UNSCORED]]
    shown = f"the first {UNSCORED} of {len(items)}" if len(items) > UNSCORED else len(items)
    table = Table("unscored-table", columns, rows, caption=f"records not scored: {shown}")
    return f'<section id="unscored"><h2>Not scored</h2>{table_html(table)}</section>'
