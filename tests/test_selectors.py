"""The selectors (tamis.select.methods) on hand-made rows: token budgets, the random baseline, S2L's
balanced sampling over loss-trajectory clusters and DEITA's diversity filter."""

import math
import random

import numpy as np
import pytest
from conftest import rows_from
from hypothesis import given
from hypothesis import strategies as st

from tamis.base.errors import TamisError
from tamis.select.methods import parse_tokens, random_key, trajectory_columns
from tamis.select.selection import Selection, select


def kept_ids(rows, decisions):
    return [r["id"] for r, d in zip(rows, decisions, strict=True) if d.kept]


def with_tokens(values, tokens):
    rows = rows_from(values)
    for r, t in zip(rows, tokens, strict=True):
        r.update(prompt_tokens=10, response_tokens=t - 10)
    return rows


def test_a_token_budget_keeps_the_best_prefix_that_fits():
    # ppl order: r1 (40 tokens), r3 (30), r2 (50), r0 (20)
    rows = with_tokens([4.0, 1.0, 3.0, 2.0], [20, 40, 50, 30])
    got = select(rows, Selection(by="ppl", keep_tokens=100))
    # r1 + r3 = 70; r2 would make 120: the budget is spent, and r0 is not squeezed in after it
    assert kept_ids(rows, got) == ["r001", "r003"]
    ended = (
        "the budget of 100 tokens ended the selection (70 used; the next record in order needed 50)"
    )
    assert ended in got[2].detail and ended in got[0].detail
    assert got[0].reason == "ranked_out" and "kept the lowest 2 (cut at ppl=2)" in got[0].detail
    # with a count as well, whichever is reached first
    assert kept_ids(rows, select(rows, Selection(by="ppl", keep=1, keep_tokens=100))) == ["r001"]
    assert kept_ids(rows, select(rows, Selection(by="ppl", keep_tokens=39))) == []


def test_a_token_budget_needs_the_token_counts():
    with pytest.raises(TamisError, match="--scorer tokens"):
        select(rows_from([1.0, 2.0]), Selection(by="ppl", keep_tokens=100))


@pytest.mark.parametrize(
    ("text", "value"), [("200000", 200000), ("200k", 200000), ("1.5M", 1500000), ("7", 7)]
)
def test_parse_tokens(text, value):
    assert parse_tokens(text) == value


@pytest.mark.parametrize("text", ["0", "-5", "abc", "1.5", "k", "nan"])
def test_parse_tokens_rejects_bad_values(text):
    with pytest.raises(TamisError, match="--keep-tokens"):
        parse_tokens(text)


@given(st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=3), st.randoms())
def test_random_order_is_seeded_and_order_free(k, seed, rnd):
    rows = rows_from([1.0] * 40)
    kept = set(kept_ids(rows, select(rows, Selection(by="random", keep=k, seed=seed))))
    assert len(kept) == k
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    again = select(shuffled, Selection(by="random", keep=k, seed=seed))
    assert set(kept_ids(shuffled, again)) == kept


def test_random_order_differs_by_seed_and_ignores_missing_scores():
    rows = rows_from([math.nan] * 30)  # no ppl at all: a random order does not need one
    a = kept_ids(rows, select(rows, Selection(by="random", keep=10, seed=0)))
    b = kept_ids(rows, select(rows, Selection(by="random", keep=10, seed=1)))
    assert len(a) == len(b) == 10 and a != b
    assert 0 <= random_key(0, "x") < 1 and random_key(0, "x") != random_key(1, "x")


def trajectories(sizes, rng):
    """Rows whose loss trajectories p0..p3 fall in well-separated groups of the given sizes:
    learned fast, learned slowly, not learned."""
    shapes = [(8.0, 3.0, 2.0, 1.5), (8.0, 7.0, 6.0, 5.0), (3.0, 3.0, 3.0, 3.0)]
    rows, i = [], 0
    for size, shape in zip(sizes, shapes, strict=True):
        for _ in range(size):
            p = {f"p{e}": v * rng.uniform(0.97, 1.03) for e, v in enumerate(shape)}
            rows.append({"index": i, "id": f"r{i:03d}", "status": "ok", "detail": "",
                         "truncated": False, "ppl": p["p0"], **p})  # fmt: skip
            i += 1
    return rows


def test_s2l_spreads_the_budget_evenly_over_trajectory_clusters():
    rows = trajectories([2, 6, 20], random.Random(0))
    got = select(rows, Selection(method="s2l", keep=9, clusters=3, seed=0))
    kept = kept_ids(rows, got)
    counts = [sum(1 for r in kept if lo <= int(r[1:]) < hi) for lo, hi in ((0, 2), (2, 8), (8, 28))]
    # the smallest cluster is taken whole; the other 7 are split evenly over the other two
    assert counts[0] == 2 and sorted(counts[1:]) == [3, 4]
    dropped = [d for d in got if not d.kept]
    assert all(d.reason == "ranked_out" and "s2l: trajectory cluster" in d.detail for d in dropped)
    # top-9 by ppl would have taken the 9 records the model finds easiest, none of cluster 1
    by_ppl = kept_ids(rows, select(rows, Selection(by="ppl", keep=9)))
    assert not any(2 <= int(r[1:]) < 8 for r in by_ppl)


def test_s2l_is_seeded_and_order_free():
    rows = trajectories([5, 10, 25], random.Random(1))
    sel = Selection(method="s2l", keep=12, clusters=3, seed=4)
    kept = set(kept_ids(rows, select(rows, sel)))
    shuffled = list(rows)
    random.Random(2).shuffle(shuffled)
    assert set(kept_ids(shuffled, select(shuffled, sel))) == kept
    other = set(kept_ids(rows, select(rows, Selection(method="s2l", keep=12, clusters=3, seed=5))))
    assert other != kept and len(other) == 12


def test_s2l_needs_the_lp_trajectory():
    assert trajectory_columns(["p0", "p2", "p1", "ppl", "lp"]) == ["p0", "p1", "p2"]
    assert trajectory_columns(["p0", "ppl"]) == []
    with pytest.raises(TamisError, match="--scorer lp"):
        select(rows_from([1.0, 2.0]), Selection(method="s2l", keep=1))


def unit(*v):
    x = np.array(v, dtype=np.float32)
    return x / np.linalg.norm(x)


def test_diverse_skips_a_near_copy_of_a_record_taken_before_it():
    rows = rows_from([1.0, 2.0, 3.0, 4.0])
    vectors = {0: unit(1, 0, 0), 1: unit(1, 0.05, 0), 2: unit(0, 1, 0), 3: unit(0, 0, 1)}
    got = select(rows, Selection(method="diverse", keep=3), vectors)
    assert kept_ids(rows, got) == ["r000", "r002", "r003"]
    assert got[1].reason == "too_similar" and "with record r000" in got[1].detail
    # a looser threshold keeps the near copy, and then the budget runs out first
    looser = select(rows, Selection(method="diverse", keep=3, max_similarity=0.9999), vectors)
    assert kept_ids(rows, looser) == ["r000", "r001", "r002"]


def test_a_near_copy_does_not_spend_the_token_budget():
    rows = with_tokens([1.0, 2.0, 3.0], [60, 50, 30])
    vectors = {0: unit(1, 0, 0), 1: unit(1, 0.05, 0), 2: unit(0, 1, 0)}
    got = select(rows, Selection(method="diverse", keep_tokens=100), vectors)
    # r001 would not fit after r000, but it is skipped as a near-copy before its tokens count
    assert kept_ids(rows, got) == ["r000", "r002"] and got[1].reason == "too_similar"


def test_options_a_random_or_s2l_order_would_ignore_are_refused():
    rows = rows_from([1.0, 2.0])
    with pytest.raises(TamisError, match="--by random reads no --by value, so --min"):
        select(rows, Selection(by="random", keep=1, min=0.5))
    with pytest.raises(TamisError, match="--clusters 0"):
        select(rows, Selection(by="random", keep=1, clusters=0))


def test_method_options_are_checked():
    rows = rows_from([1.0, 2.0], cluster=0)
    with pytest.raises(TamisError, match="unknown --method"):
        select(rows, Selection(method="best"))
    with pytest.raises(TamisError, match="embeddings"):
        select(rows, Selection(method="diverse", keep=1))
    with pytest.raises(TamisError, match="--max-similarity"):
        select(rows, Selection(method="diverse", keep=1, max_similarity=1.5), {})
    with pytest.raises(TamisError, match="--per-cluster"):
        select(rows, Selection(method="diverse", keep=1, per_cluster=True), {})
