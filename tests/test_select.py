"""Selection on hand-made score rows: counts, directions, thresholds, reasons, determinism."""

import math

import pytest
from conftest import rows_from
from hypothesis import given
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.select import Selection, parse_filter, parse_keep, select


def kept_ids(rows, decisions):
    return [r["id"] for r, d in zip(rows, decisions, strict=False) if d.kept]


def test_keep_lowest_ppl_by_default():
    rows = rows_from([5.0, 1.0, 3.0, 2.0])
    decisions = select(rows, Selection(by="ppl", keep=2))
    assert kept_ids(rows, decisions) == ["r001", "r003"]
    dropped = [d for d in decisions if not d.kept]
    assert {d.reason for d in dropped} == {"ranked_out"}
    assert "cut at ppl=2" in dropped[0].detail


def test_keep_highest_when_asked():
    rows = rows_from([5.0, 1.0, 3.0, 2.0])
    assert kept_ids(rows, select(rows, Selection(by="ppl", keep=1, direction="highest"))) == [
        "r000"
    ]


def test_fraction_is_of_scored_records_rounded_down():
    rows = rows_from([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0])
    rows.append(
        {
            "index": 7,
            "id": "bad",
            "status": "bad_json",
            "detail": "x",
            "truncated": False,
            "ppl": None,
        }
    )
    decisions = select(rows, Selection(by="ppl", keep=0.5))
    assert sum(d.kept for d in decisions) == 3  # floor(0.5 * 7 scored)
    assert decisions[7].reason == "bad_json"


def test_ties_are_broken_by_id():
    rows = rows_from([1.0, 1.0, 1.0])
    rows[0]["id"], rows[1]["id"], rows[2]["id"] = "c", "a", "b"
    assert kept_ids(rows, select(rows, Selection(by="ppl", keep=2))) == ["a", "b"]


def test_thresholds_give_their_own_reasons():
    rows = rows_from([0.5, 2.0, 50.0, 3.0])
    decisions = select(rows, Selection(by="ppl", min=1.0, max=10.0))
    assert [d.reason for d in decisions] == ["below_min", "", "above_max", ""]


def test_ifd_default_limit_and_direction():
    rows = rows_from([0.9, 1.2, 0.3, 0.6], column="ifd")
    decisions = select(rows, Selection(by="ifd", keep=2))
    assert kept_ids(rows, decisions) == ["r000", "r003"]  # highest IFD that is <= 1
    assert decisions[1].reason == "ifd_above_limit"
    no_limit = select(rows, Selection(by="ifd", keep=2, drop_ifd_above=math.inf))
    assert kept_ids(rows, no_limit) == ["r000", "r001"]


def test_ifd_limit_applies_when_ranking_by_another_score():
    rows = rows_from([1.0, 2.0, 3.0])
    for r, v in zip(rows, [1.5, 0.5, 0.5], strict=False):
        r["ifd"] = v
    decisions = select(rows, Selection(by="ppl", keep=2, drop_ifd_above=1.0))
    assert kept_ids(rows, decisions) == ["r001", "r002"]


def test_missing_score_column_is_a_clear_error():
    with pytest.raises(TamisError, match="--by ifd: no such score"):
        select(rows_from([1.0]), Selection(by="ifd"))


def test_nan_score_is_dropped_with_a_reason():
    rows = rows_from([1.0, float("nan")])
    assert [d.reason for d in select(rows, Selection(by="ppl"))] == ["", "no_score"]


@pytest.mark.parametrize(
    ("text", "value"), [("500", 500), ("0.2", 0.2), ("20%", 0.2), ("1.0", 1.0)]
)
def test_parse_keep(text, value):
    assert parse_keep(text) == pytest.approx(value)
    assert isinstance(parse_keep(text), type(value))


@pytest.mark.parametrize("text", ["abc", "1.5", "0.0", "-3", "150%", "0"])
def test_parse_keep_rejects_bad_values(text):
    with pytest.raises(TamisError, match="--keep"):
        parse_keep(text)


def test_keep_zero_is_refused_by_the_library_too():
    with pytest.raises(TamisError, match="--keep 0 would keep nothing"):
        select(rows_from([1.0, 2.0]), Selection(by="ppl", keep=0))


scores = st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=60)


@given(scores, st.integers(min_value=1, max_value=80), st.randoms())
def test_count_exact_deterministic_and_order_free(values, k, rnd):
    rows = rows_from(values)
    decisions = select(rows, Selection(by="ppl", keep=k))
    kept = set(kept_ids(rows, decisions))
    assert len(kept) == min(k, len(values))
    assert all(d.kept or d.reason for d in decisions)  # every drop has a reason
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    again = select(shuffled, Selection(by="ppl", keep=k))
    assert set(kept_ids(shuffled, again)) == kept
    # kept scores are all <= every dropped score
    if kept and len(kept) < len(values):
        worst_kept = max(r["ppl"] for r in rows if r["id"] in kept)
        best_dropped = min(r["ppl"] for r in rows if r["id"] not in kept)
        assert worst_kept <= best_dropped


def test_filters_drop_with_their_own_reason_in_order():
    rows = rows_from([1.0, 2.0, 3.0, 4.0])
    for r, rep, dup in zip(rows, [0.1, 0.9, 0.2, 0.1], [0, 0, 1, 0], strict=True):
        r["repetition"], r["duplicate"] = rep, dup
    sel = Selection(
        by="ppl", filters=(parse_filter("repetition<=0.5"), parse_filter("duplicate==0"))
    )
    decisions = select(rows, sel)
    assert [d.reason for d in decisions] == ["", "filter_repetition", "filter_duplicate", ""]
    assert decisions[1].detail == "repetition=0.9 fails --filter repetition<=0.5"


def test_filter_on_an_unknown_column_is_a_clear_error():
    with pytest.raises(TamisError, match="--filter on nope: no such column"):
        select(rows_from([1.0]), Selection(filters=(parse_filter("nope<1"),)))


@pytest.mark.parametrize("text", ["repetition", "rep <= x", "1<=2", "rep=<1"])
def test_bad_filter_expressions_are_explained(text):
    with pytest.raises(TamisError, match="--filter"):
        parse_filter(text)
