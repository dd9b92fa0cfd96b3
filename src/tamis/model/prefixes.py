"""Shared prompt prefixes: which records start with the same tokens, so that the runner computes
those tokens' attention keys and values once instead of once per record.

Records rendered with one template open with the same tokens: Alpaca's preamble is 24 tokens
under SmolLM2's tokenizer (33 with an input), and SmolLM2's chat template with its default system
prompt opens every record with 24. For Alpaca records of ~110 tokens that is a fifth to a quarter
of every forward pass, which the reference implementations recompute for every record.

:func:`shared_prefixes` is pure: it sees token ids and how many leading tokens of each sequence
may be shared (a prefix must end before the position whose hidden state predicts the first
scored token), and splits the sequences into groups that save the most tokens.
"""

from __future__ import annotations

from collections.abc import Sequence

# What one more group costs, in tokens of forward compute: a separate run of batches, so one
# more partly filled batch, and the prefix pass's own overhead. Keeps tiny groups from forming.
GROUP_COST = 16
# Groups nest (a system prompt, then one of several instructions); deeper splits are not tried.
MAX_DEPTH = 32


def shared_prefixes(
    sequences: Sequence[Sequence[int]], limits: Sequence[int], group_cost: int = GROUP_COST
) -> list[tuple[int, list[int]]]:
    """Split ``range(len(sequences))`` into groups ``(p, members)``: every member starts with the
    same ``p`` tokens and ``p <= limits[i]`` for each member ``i``; members in ascending order.

    A group saves ``(len(members) - 1) * p - group_cost`` tokens of compute (its prefix is
    computed once instead of once per member). Groups are chosen to save the most, nested
    prefixes included (Alpaca's two preambles share their first 8 tokens; two groups of 24 and
    33 tokens save more than one of 8). Sequences that gain nothing form one group with
    ``p = 0``, last. The grouping depends only on the set of sequences, not their order.

    >>> shared_prefixes([(1, 2, 3, 4), (1, 2, 3, 5), (9, 9)], [3, 3, 1], group_cost=0)
    [(3, [0, 1]), (0, [2])]
    """
    order = sorted(range(len(sequences)), key=lambda i: (tuple(sequences[i]), i))
    # lcp[k]: tokens the k-th and (k+1)-th sequences in sorted order may share
    lcp = [
        _common(sequences[a], sequences[b], min(limits[a], limits[b]))
        for a, b in zip(order, order[1:], strict=False)
    ]
    groups = _plan(lcp, 0, len(order), 0, group_cost)[1] if len(order) > 1 else [(0, order)]
    out, plain = [], []
    for p, positions in groups:
        members = sorted(order[k] for k in positions)
        if p > 0 and _gain(p, len(members), group_cost) > 0:
            out.append((p, members))
        else:
            plain.extend(members)
    if plain:
        out.append((0, sorted(plain)))
    return out


def _plan(lcp, lo: int, hi: int, depth: int, cost: int) -> tuple[int, list]:
    """``(tokens saved, groups)`` for the sorted positions ``lo..hi-1`` (at least two): either
    one group with their common prefix, or the runs that share a longer one planned on their
    own, the rest pooled under the common prefix, whichever saves more."""
    p = min(lcp[lo : hi - 1])
    whole = (_gain(p, hi - lo, cost), [(p, list(range(lo, hi)))])
    if depth >= MAX_DEPTH:
        return whole
    saved, groups, rest, start = 0, [], [], lo
    for k in range(lo, hi):
        if k < hi - 1 and lcp[k] != p:
            continue
        # positions start..k share more than p tokens
        if k > start:
            sub_saved, sub_groups = _plan(lcp, start, k + 1, depth + 1, cost)
            if sub_saved > 0:
                saved += sub_saved
                groups += sub_groups
                start = k + 1
                continue
        rest.extend(range(start, k + 1))
        start = k + 1
    if rest:
        saved += max(_gain(p, len(rest), cost), 0)
        groups.append((p, rest))
    return (saved, groups) if saved > whole[0] else whole


def _gain(p: int, n: int, cost: int) -> int:
    return (n - 1) * p - cost if p > 0 else 0


def _common(a: Sequence[int], b: Sequence[int], limit: int) -> int:
    n = 0
    for x, y in zip(a[:limit], b[:limit], strict=False):
        if x != y:
            break
        n += 1
    return n
