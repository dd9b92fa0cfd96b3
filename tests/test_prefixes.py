"""Shared prefixes: hand-worked groupings and the properties every grouping must have."""

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from tamis.model.prefixes import shared_prefixes

# Two preambles that share their first 3 tokens, as Alpaca's with and without an input do
# (8 tokens in common, then 24 and 33 tokens each).
NO_INPUT = (1, 2, 3, 4, 5, 6, 7, 8)
WITH_INPUT = (1, 2, 3, 9, 9, 9, 9, 9, 9, 9)


def test_nested_preambles_make_two_groups_not_one():
    seqs = [NO_INPUT + (20 + i,) for i in range(5)] + [WITH_INPUT + (40 + i,) for i in range(4)]
    limits = [len(s) - 1 for s in seqs]
    # one group of 3 tokens saves 8 * 3 = 24; two groups save 4 * 8 + 3 * 10 = 62
    assert shared_prefixes(seqs, limits, group_cost=0) == [
        (8, [0, 1, 2, 3, 4]),
        (10, [5, 6, 7, 8]),
    ]
    # at 31 tokens a group, the second group would cost more than it saves (3 * 10 - 31 < 0) and
    # pooling it under the common 3 tokens too (3 * 3 - 31); it runs unshared
    assert shared_prefixes(seqs, limits, group_cost=31) == [
        (8, [0, 1, 2, 3, 4]),
        (0, [5, 6, 7, 8]),
    ]


def test_a_prefix_stops_at_each_members_limit():
    seqs = [NO_INPUT + (20,), NO_INPUT + (21,), NO_INPUT[:4] + (30, 31)]
    # the third record's prompt is 4 tokens long: its prefix may hold 3
    assert shared_prefixes(seqs, [8, 8, 3], group_cost=0) == [(8, [0, 1]), (0, [2])]
    # with the first limited to 5, sharing 3 tokens among all three (6) beats 5 between two
    assert shared_prefixes(seqs, [5, 8, 3], group_cost=0) == [(3, [0, 1, 2])]


def test_nothing_shared_and_nothing_to_share():
    assert shared_prefixes([], []) == []
    assert shared_prefixes([(1, 2)], [1]) == [(0, [0])]
    assert shared_prefixes([(1, 2), (3, 4), (5, 6)], [1, 1, 1]) == [(0, [0, 1, 2])]
    # identical sequences with nothing that may be shared
    assert shared_prefixes([(1, 2), (1, 2)], [0, 0]) == [(0, [0, 1])]


def test_a_long_common_prefix_is_shared_by_all():
    seqs = [tuple(range(100)) + (1000 + i,) for i in range(10)]
    assert shared_prefixes(seqs, [100] * 10) == [(100, list(range(10)))]


sequences = st.lists(
    st.lists(st.integers(0, 3), min_size=1, max_size=12).map(tuple), min_size=0, max_size=40
)


@settings(max_examples=200, deadline=None)
@given(sequences, st.integers(0, 30), st.randoms(use_true_random=False))
def test_groups_partition_share_their_prefix_and_ignore_order(seqs, cost, rnd):
    limits = [max(0, len(s) - 2) for s in seqs]
    groups = shared_prefixes(seqs, limits, group_cost=cost)
    members = sorted(i for _, m in groups for i in m)
    assert members == list(range(len(seqs)))  # every sequence once
    for p, m in groups:
        assert m == sorted(m)
        if p:
            assert all(p <= limits[i] for i in m)
            assert len({seqs[i][:p] for i in m}) == 1
            assert (len(m) - 1) * p - cost > 0  # a group saves tokens, or it is not formed
    assert sum(1 for p, _ in groups if p == 0) <= 1
    # the same sequences in another order are grouped the same way; identical sequences may
    # trade places, so groups are compared by their sequences
    order = list(range(len(seqs)))
    rnd.shuffle(order)
    again = shared_prefixes([seqs[i] for i in order], [limits[i] for i in order], cost)
    assert sorted((p, sorted(seqs[i] for i in m)) for p, m in groups) == sorted(
        (p, sorted(seqs[order[j]] for j in m)) for p, m in again
    )


def test_alpaca_like_pool_is_grouped_by_preamble():
    rnd = random.Random(0)
    seqs = []
    for i in range(60):
        head = NO_INPUT if i % 3 else WITH_INPUT
        seqs.append(head + tuple(rnd.randrange(100, 200) for _ in range(rnd.randrange(3, 9))))
    limits = [len(h) + 1 for h in (NO_INPUT if i % 3 else WITH_INPUT for i in range(60))]
    groups = shared_prefixes(seqs, limits)
    by_prefix = {p: m for p, m in groups}
    assert set(by_prefix) >= {len(NO_INPUT), len(WITH_INPUT)}
    assert by_prefix[len(WITH_INPUT)][:3] == [0, 3, 6]
