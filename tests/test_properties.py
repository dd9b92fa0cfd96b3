"""Property tests (hypothesis) for the readers and for selection.

Readers: any valid record, of any Unicode text, read from any file type, comes back exactly, and
so does the curated output written from it. Selection: exactly the requested count (or every
candidate when there are fewer), deterministic, independent of input order, a reason for every
drop, and a manifest whose counts add up to the input.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_formats import as_read, write

from tamis.base.files import write_json
from tamis.data.outputs import write_scores, write_selection
from tamis.data.readers import read_dataset
from tamis.select import parse_filter
from tamis.select.selection import Selection, cluster_quotas, select

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# ---- readers ----------------------------------------------------------------------------------

text = st.text(max_size=40)  # any Unicode scalar value: emoji, RTL, controls, NUL, U+2028...
solid = text.filter(lambda s: s.strip())
alpaca = st.fixed_dictionaries({"instruction": text, "input": text, "output": solid})
turn_text = solid


@st.composite
def chats(draw):
    """A ``messages`` record: an optional system turn, user/assistant pairs, the last from the
    assistant."""
    turns = [{"role": "system", "content": draw(text)}] if draw(st.booleans()) else []
    for _ in range(draw(st.integers(1, 3))):
        turns.append({"role": "user", "content": draw(turn_text)})
        turns.append({"role": "assistant", "content": draw(turn_text)})
    return {"messages": turns}


def with_ids(rows: list[dict]) -> list[dict]:
    return [{"id": f"r{i}", **row} for i, row in enumerate(rows)]  # equal content is allowed


def read_back(suffix: str, rows: list[dict]):
    with tempfile.TemporaryDirectory() as tmp:
        data = read_dataset(write(Path(tmp) / f"d{suffix}", rows))
        # the curated output, written from what was read, reads back the same again
        write_selection(Path(tmp), [r.raw for r in data.records], [])
        again = read_dataset(Path(tmp) / "selected.jsonl")
    return data, again


@SETTINGS
@given(
    st.lists(alpaca, min_size=1, max_size=6),
    st.sampled_from([".jsonl", ".json", ".parquet", ".csv"]),
)
def test_any_alpaca_record_round_trips_through_every_file_type(rows, suffix):
    rows = with_ids(rows)
    data, again = read_back(suffix, rows)
    expected = [as_read(r, suffix) for r in rows]
    assert data.bad == [] and [r.raw for r in data.records] == expected
    assert [r.response for r in data.records] == [r["output"] for r in rows]
    assert [r.alpaca_fields for r in data.records] == [(r["instruction"], r["input"]) for r in rows]
    assert [r.raw for r in again.records] == expected
    assert [r.id for r in again.records] == [r.id for r in data.records]


@SETTINGS
@given(st.lists(chats(), min_size=1, max_size=4), st.sampled_from([".jsonl", ".json", ".parquet"]))
def test_any_chat_record_round_trips(rows, suffix):
    rows = with_ids(rows)
    data, again = read_back(suffix, rows)
    assert data.format == "messages" and [r.raw for r in data.records] == rows
    for rec, row in zip(data.records, rows, strict=True):
        assert rec.response == row["messages"][-1]["content"]
        assert [m.content for m in rec.prompt] == [t["content"] for t in row["messages"][:-1]]
    assert [r.raw for r in again.records] == rows


@SETTINGS
@given(st.lists(alpaca, min_size=1, max_size=6))
def test_content_ids_do_not_depend_on_the_file_type(rows):
    # no ids of their own: the content hash must be the same whichever way the file was written
    rows = list({json.dumps(r, sort_keys=True): r for r in rows}.values())  # no duplicates
    ids = {s: [r.id for r in read_back(s, rows)[0].records] for s in (".jsonl", ".csv", ".parquet")}
    assert ids[".jsonl"] == ids[".csv"] == ids[".parquet"]


# ---- selection --------------------------------------------------------------------------------

STATUSES = ["ok"] * 6 + ["too_long", "bad_json", "duplicate_id"]
# few distinct values, so ties are common; NaN is a score that could not be computed
score = st.one_of(st.sampled_from([0.5, 1.0, 1.0, 2.0, 3.5]), st.floats(0, 100), st.just(math.nan))


@st.composite
def score_rows(draw):
    n = draw(st.integers(0, 40))
    ids = draw(st.permutations([f"id{i:02d}" for i in range(n)]))
    rows = []
    for i in range(n):
        status = draw(st.sampled_from(STATUSES))
        ok = status == "ok"
        rows.append(
            {
                "index": i,
                "id": ids[i],
                "status": status,
                "detail": "" if ok else "why",
                "truncated": False,
                "ppl": draw(score) if ok else None,
                "repetition": draw(st.floats(0, 1)) if ok else None,
                "cluster": draw(st.integers(0, 3)) if ok else None,
            }
        )
    return rows


@st.composite
def selections(draw):
    keep = draw(st.one_of(st.none(), st.integers(1, 50), st.floats(0.01, 1.0)))
    return Selection(
        by="ppl",
        keep=keep,
        direction=draw(st.sampled_from([None, "lowest", "highest"])),
        min=draw(st.one_of(st.none(), st.just(0.75))),
        max=draw(st.one_of(st.none(), st.just(60.0))),
        filters=(parse_filter("repetition<=0.8"),) if draw(st.booleans()) else (),
        per_cluster=draw(st.booleans()),
    )


def candidates(rows: list[dict], sel: Selection) -> list[dict]:
    """The rows a selection may keep, computed independently of tamis.select.selection."""
    out = []
    for r in rows:
        v = r["ppl"]
        if r["status"] != "ok" or (sel.filters and r["repetition"] > 0.8) or math.isnan(v):
            continue
        if (sel.min is not None and v < sel.min) or (sel.max is not None and v > sel.max):
            continue
        out.append(r)
    return out


def budget(rows: list[dict], sel: Selection) -> int:
    n_scored = sum(r["status"] == "ok" for r in rows)
    if sel.keep is None:
        return n_scored
    return math.floor(sel.keep * n_scored + 1e-9) if isinstance(sel.keep, float) else sel.keep


@settings(max_examples=150, deadline=None)
@given(score_rows(), selections(), st.randoms(use_true_random=False))
def test_selection_is_exact_deterministic_and_order_free(rows, sel, rnd):
    decisions = select(rows, sel)
    assert [d.index for d in decisions] == [r["index"] for r in rows]  # one each, in row order
    assert all(d.kept or d.reason for d in decisions)  # every drop has a reason
    kept = {d.index for d in decisions if d.kept}
    pool = candidates(rows, sel)
    k = budget(rows, sel)
    if sel.per_cluster:
        ok = [r for r in rows if r["status"] == "ok"]
        quotas = cluster_quotas(Counter(r["cluster"] for r in ok), k)
        in_pool = Counter(r["cluster"] for r in pool)
        assert len(kept) == sum(min(q, in_pool[c]) for c, q in quotas.items())
    else:
        assert len(kept) == min(k, len(pool))
    assert kept <= {r["index"] for r in pool}
    assert select(rows, sel) == decisions  # deterministic
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    again = {d.index: d for d in select(shuffled, sel)}
    assert [again[d.index] for d in decisions] == decisions  # same decision, reason and detail


def scored_folder(tmp: Path, rows: list[dict]) -> Path:
    """An output folder as ``tamis score`` leaves it, for the given score rows (no model)."""
    records = [{"id": r["id"], "instruction": f"Q{r['id']}", "output": "A"} for r in rows]
    data_path = tmp / "data.jsonl"
    data_path.write_text("".join(json.dumps(x) + "\n" for x in records))
    from tamis.engines.manifest import input_info

    out = tmp / "out"
    write_scores(out / "scores.parquet", rows, ["ppl", "repetition", "cluster"])
    info = input_info(data_path, read_dataset(data_path))
    write_json(out / "manifest.json", {"input": info, "score": {"config": {"skip_bad": False}}})
    return out


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(score_rows().filter(bool), selections())
def test_manifest_counts_add_up_to_the_input(rows, sel):
    from tamis.engines.jobs import select_job

    with tempfile.TemporaryDirectory() as tmp:
        out = scored_folder(Path(tmp), rows)
        manifest = select_job(out, sel)
        selected = (out / "selected.jsonl").read_text().splitlines()
        rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    c = manifest["counts"]
    assert c["input"] == len(rows) == c["selected"] + c["rejected"]
    assert (c["selected"], c["rejected"]) == (len(selected), len(rejected))
    assert sum(c["rejected_by_reason"].values()) == c["rejected"]
    assert Counter(r["reason"] for r in rejected) == c["rejected_by_reason"]
    ids = [json.loads(x)["id"] for x in selected] + [r["id"] for r in rejected]
    assert sorted(ids) == sorted(r["id"] for r in rows)  # each record exactly once
