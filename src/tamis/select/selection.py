"""Selection: read score columns, keep or drop each record, and give a reason for every drop.

Order of decisions, each recorded as the drop reason:

1. records that were not scored keep their status as reason (``too_long``, ``bad_json``, ...);
2. junk: ``junk`` above ``--drop-junk-above`` (0 by default whenever the scores have a ``junk``
   column, :mod:`tamis.scorers.junk`): reason ``junk_<signal>``, the signal that fired, with its
   value in the detail;
3. ``--filter`` expressions such as ``repetition<=0.3``, in the order given: a record that fails
   one is dropped with reason ``filter_<column>``;
4. a missing or NaN value of the ``--by`` score: ``no_score``;
5. thresholds on the ``--by`` score: ``below_min``, ``above_max``;
6. ``ifd_above_limit``: IFD above ``--drop-ifd-above`` (1 by default when selecting by ``ifd``:
   the prompt does not help, so prompt and response likely do not belong together);
7. ordering and budget (:mod:`tamis.select.methods`): ``--method top`` takes the best records by
   ``--by`` in its better direction, ties broken by id (``--by random``: a seeded random order);
   ``--method s2l`` spreads the budget evenly over loss-trajectory clusters; ``--method diverse``
   takes the ``--by`` order but skips a record too similar to one taken (``too_similar``). The
   kept records are the longest prefix of that order within ``--keep`` records (a count, or a
   fraction of the *scored* records, rounded down) and ``--keep-tokens`` training tokens; the
   rest get ``ranked_out``. With ``--per-cluster`` a ``--keep`` count is split over the
   ``cluster`` column's clusters in proportion to their sizes (:func:`cluster_quotas`) and the
   ranking is done within each cluster (Mekala et al. 2024). Thresholds can leave fewer records
   than asked for, never more.

Deterministic, and independent of input order: the ranking key is (score, id).
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from tamis.base.errors import TamisError
from tamis.data.outputs import EXTRA_TEXT
from tamis.scorers import JUNK, direction_of
from tamis.scorers.junk import DEFAULT_CUT as JUNK_CUT
from tamis.select.methods import (
    DEFAULT_BY,
    DEFAULT_MAX_SIMILARITY,
    METHODS,
    RANDOM,
    TOKEN_COLUMNS,
    Diversity,
    random_key,
    record_tokens,
    s2l_order,
    trajectory_columns,
)
from tamis.select.options import Filter

# Every row has the first five; the junk score's text columns come with it. None is a score.
ROW_FIELDS = ("index", "id", "status", "detail", "truncated", *EXTRA_TEXT)


@dataclass(frozen=True)
class Selection:
    """What to keep. ``keep`` is an int (count), a float in (0, 1] (fraction) or None (all)."""

    by: str = DEFAULT_BY  # the default recipe: junk filter, then random (methods.RECIPE)
    keep: int | float | None = None
    direction: str | None = None  # "lowest" | "highest"; None: the score's better direction
    min: float | None = None
    max: float | None = None
    drop_ifd_above: float | None = None
    filters: tuple[Filter, ...] = ()
    per_cluster: bool = False  # split the budget over the `cluster` column's clusters
    # None: drop junk > 0 when the scores have a junk column; inf: never
    drop_junk_above: float | None = None
    keep_tokens: int | None = None  # a budget in training tokens (prompt + response)
    method: str = "top"  # tamis.select.methods.METHODS
    seed: int = 0  # --by random, and s2l's order within a cluster
    clusters: int | None = None  # s2l's trajectory clusters; None: round(sqrt(n / 2))
    max_similarity: float = DEFAULT_MAX_SIMILARITY  # diverse

    def resolved_direction(self) -> str:
        if self.by == RANDOM:
            return "random"
        if self.direction is not None:
            return self.direction
        return "lowest" if (direction_of(self.by) or "lower") == "lower" else "highest"

    def ifd_limit(self) -> float | None:
        """The IFD limit in force: the given one, else 1.0 when selecting by ``ifd``."""
        if self.drop_ifd_above is not None:
            return None if math.isinf(self.drop_ifd_above) else self.drop_ifd_above
        return 1.0 if self.by == "ifd" else None

    def junk_limit(self, columns: list[str]) -> float | None:
        """The junk cut in force for scores with ``columns``: the given one, else
        :data:`~tamis.scorers.junk.DEFAULT_CUT` when there is a ``junk`` column; None: off."""
        if self.drop_junk_above is not None:
            return None if math.isinf(self.drop_junk_above) else self.drop_junk_above
        return JUNK_CUT if JUNK in columns else None


@dataclass(frozen=True)
class Decision:
    index: int
    kept: bool
    reason: str = ""
    detail: str = ""


def check_columns(sel: Selection, columns: list[str]) -> None:
    """Fail clearly when ``sel`` names a score that ``columns`` (the run's scores) lacks."""
    have = ", ".join(columns)
    if sel.method not in METHODS:
        raise TamisError(f"unknown --method '{sel.method}'; choose one of: {', '.join(METHODS)}")
    if sel.by != RANDOM and sel.method != "s2l" and sel.by not in columns:
        raise TamisError(
            f"--by {sel.by}: no such score in this run; choose one of: {have}, {RANDOM} "
            "(or score it with --scorer)"
        )
    if sel.method == "s2l" and not trajectory_columns(columns):
        raise TamisError(
            "--method s2l clusters the loss trajectory p0..pN of --scorer lp; score with "
            "--scorer lp (or choose another --method)"
        )
    counted = "train_tokens" in columns or all(c in columns for c in TOKEN_COLUMNS)
    if sel.keep_tokens is not None and not counted:
        raise TamisError(
            "--keep-tokens counts prompt_tokens + response_tokens (or train_tokens); add "
            "--scorer tokens"
        )
    if sel.per_cluster and (sel.method != "top" or sel.keep_tokens is not None):
        raise TamisError(
            "--per-cluster splits a --keep count for --method top; it does not combine with "
            f"--method {sel.method} or --keep-tokens yet"
            if sel.method != "top"
            else "--per-cluster splits a --keep count; it does not combine with --keep-tokens "
            "yet (use --method s2l for a balanced selection under a token budget)"
        )
    ignored = [o for o, v in (("--min", sel.min), ("--max", sel.max),
               ("--keep-lowest/--keep-highest", sel.direction)) if v is not None]  # fmt: skip
    if ignored and (sel.by == RANDOM or sel.method == "s2l"):
        what = "--by random" if sel.by == RANDOM else "--method s2l"
        raise TamisError(
            f"{what} reads no --by value, so {', '.join(ignored)} would be ignored; name a "
            "score with --by (e.g. --by ppl; without --by, the budget is a random sample of the "
            "records the junk filter keeps)"
        )
    if sel.keep == 0 and not isinstance(sel.keep, float):
        raise TamisError("--keep 0 would keep nothing; give a count of 1 or more, or a fraction")
    if sel.clusters is not None and sel.clusters < 1:
        raise TamisError(f"--clusters {sel.clusters}: must be at least 1")
    if not 0 < sel.max_similarity <= 1:
        raise TamisError(f"--max-similarity {sel.max_similarity:g}: must be in (0, 1]")
    missing = [f.column for f in sel.filters if f.column not in columns]
    if missing:
        raise TamisError(
            f"--filter on {', '.join(missing)}: no such column in this run; choose "
            f"from: {have} (or score it with --scorer)"
        )
    if sel.per_cluster and "cluster" not in columns:
        raise TamisError("--per-cluster needs the cluster column; add --scorer cluster")
    if sel.junk_limit(columns) is not None and JUNK not in columns:
        raise TamisError(
            "--drop-junk-above needs the junk score; add --scorer junk or pass "
            "--drop-junk-above none"
        )
    if sel.ifd_limit() is not None and "ifd" not in columns:
        raise TamisError(
            "--drop-ifd-above needs the ifd score; add --scorer ifd or pass --drop-ifd-above none"
        )


def select(
    rows: list[dict[str, Any]], sel: Selection, vectors: dict[int, Any] | None = None
) -> list[Decision]:
    """One :class:`Decision` per row, in row order. ``rows`` are :class:`ScoreResult` rows;
    ``vectors`` (``{index: unit vector}``) are the embeddings ``--method diverse`` needs."""
    columns = [c for c in rows[0] if c not in ROW_FIELDS] if rows else []
    if rows:
        check_columns(sel, columns)
    limit = sel.ifd_limit()
    junk = sel.junk_limit(columns)
    decisions: dict[int, Decision] = {}
    candidates = []
    n_scored = 0
    for row in rows:
        reason, detail = _filter(row, sel, limit, junk)
        if row["status"] == "ok":
            n_scored += 1
        if reason:
            decisions[row["index"]] = Decision(row["index"], False, reason, detail)
        else:
            candidates.append(row)
    k = keep_count(sel.keep, n_scored)
    if sel.per_cluster:
        quotas = cluster_quotas(Counter(r["cluster"] for r in rows if r["status"] == "ok"), k)
        groups: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for row in candidates:
            groups[row["cluster"]].append(row)
        for cluster in sorted(groups):
            _rank(groups[cluster], quotas[cluster], sel, decisions, f"in cluster {cluster}: ")
        return [decisions[row["index"]] for row in rows]
    if sel.method == "s2l":
        trajectory = trajectory_columns(columns)
        usable = [r for r in candidates if all(_positive(r.get(c)) for c in trajectory)]
        have = {r["index"] for r in usable}
        for row in candidates:
            if row["index"] not in have:
                decisions[row["index"]] = Decision(
                    row["index"], False, "no_score", "its loss trajectory could not be computed"
                )
        order, where = s2l_order(usable, trajectory, sel.clusters, sel.seed)
        _take(
            order,
            k,
            sel,
            decisions,
            lambda r: "s2l: trajectory cluster {} of {}; kept".format(*where[r["index"]]),
        )
        return [decisions[row["index"]] for row in rows]
    admit = None
    if sel.method == "diverse":
        if vectors is None:
            raise TamisError("--method diverse needs the records' embeddings (tamis.model.embed)")
        admit = Diversity(vectors, sel.max_similarity)
    _rank(candidates, k, sel, decisions, "", admit)
    return [decisions[row["index"]] for row in rows]


def cluster_quotas(sizes: dict[int, int], k: int) -> dict[int, int]:
    """Split a budget of ``k`` over clusters in proportion to their sizes, exactly.

    Largest-remainder method: each cluster gets ``floor(k * size / total)``, and the records left
    over go one each to the clusters with the largest fractional parts (ties: lower cluster id).
    The quotas add up to ``min(k, total)``.

    >>> cluster_quotas({0: 5, 1: 3, 2: 2}, 5)
    {0: 3, 1: 1, 2: 1}
    """
    total = sum(sizes.values())
    k = min(k, total)
    if total == 0:
        return {c: 0 for c in sizes}
    exact = {c: k * n / total for c, n in sizes.items()}
    quotas = {c: math.floor(x) for c, x in exact.items()}
    left = k - sum(quotas.values())
    for c in sorted(sizes, key=lambda c: (-(exact[c] - quotas[c]), c))[:left]:
        quotas[c] += 1
    return dict(sorted(quotas.items()))


def _rank(
    candidates: list[dict[str, Any]], k: int, sel: Selection, decisions: dict, where: str,
    admit=None,
) -> None:  # fmt: skip
    """Take the best of ``candidates`` by ``--by`` (or in ``--by random``'s order)."""
    if sel.by == RANDOM:
        candidates.sort(key=lambda r: (random_key(sel.seed, r["id"]), str(r["id"])))
        _take(candidates, k, sel, decisions,
              lambda r: f"{where}random order (seed {sel.seed}); kept", admit)  # fmt: skip
        return
    lowest = sel.resolved_direction() == "lowest"
    sign = 1.0 if lowest else -1.0
    candidates.sort(key=lambda r: (sign * r[sel.by], str(r["id"])))
    side = "lowest" if lowest else "highest"
    _take(candidates, k, sel, decisions,
          lambda r: f"{sel.by}={r[sel.by]:.6g}; {where}kept the {side}", admit)  # fmt: skip


def _take(order, k, sel: Selection, decisions: dict, describe, admit=None) -> None:
    """Keep the longest prefix of ``order`` within ``k`` records and ``sel.keep_tokens`` tokens;
    ``admit`` (a :class:`~tamis.select.methods.Diversity`, ``--method diverse``) may skip a record
    on the way (``too_similar``, before its tokens are counted). The rest is ``ranked_out``, with
    ``describe(row)`` and where the budget ran out."""
    budget = sel.keep_tokens
    kept, used, last = 0, 0, None
    full: str | None = None  # why the budget is spent: "" for the count, else the tokens
    for row in order:
        why = ""
        if full is None and kept >= k:
            full = ""
        elif full is None:
            why = admit.check(row) if admit else ""  # a near-copy is skipped, not budgeted
            cost = record_tokens(row) if budget is not None else 0
            if not why and budget is not None and used + cost > budget:
                full = (
                    f"; the budget of {budget} tokens ended the selection ({used} used; the "
                    f"next record in order needed {cost})"
                )
        if full is not None:
            end = f" (cut at {sel.by}={last[sel.by]:.6g})" if _has_cut(sel, last) else ""
            detail = f"{describe(row)} {kept}{end}{full}"
            decisions[row["index"]] = Decision(row["index"], False, "ranked_out", detail)
            continue
        if why:
            decisions[row["index"]] = Decision(row["index"], False, "too_similar", why)
            continue
        if admit:
            admit.add(row)
        decisions[row["index"]] = Decision(row["index"], True)
        kept, used, last = kept + 1, used + cost, row


def _positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def _has_cut(sel: Selection, last) -> bool:
    return last is not None and sel.method == "top" and sel.by != RANDOM


def keep_count(keep: int | float | None, n_scored: int) -> int:
    """The budget in records: a count as given, a fraction of the scored records rounded down,
    every scored record for None."""
    if keep is None:
        return n_scored
    if isinstance(keep, float):
        return math.floor(keep * n_scored + 1e-9)
    return keep


def _filter(
    row: dict[str, Any], sel: Selection, ifd_limit: float | None, junk_limit: float | None
) -> tuple[str, str]:
    if row["status"] != "ok":
        return row["status"], row.get("detail") or ""
    junk = row.get(JUNK)
    if junk_limit is not None and junk is not None and junk > junk_limit:
        signal = row.get("junk_signal") or "signal"
        return f"junk_{signal}", f"junk={junk:.4g} > {junk_limit:g}: {row.get('junk_detail')}"
    for f in sel.filters:
        got = row.get(f.column)
        if got is None or (isinstance(got, float) and math.isnan(got)):
            return f"filter_{f.column}", f"{f.column} has no value; --filter {f} needs one"
        if not f.passes(got):
            repeats = row.get(f"{f.column}_of")  # dup_exact_of, dup_near_of: what it repeats
            also = f" (repeats {repeats})" if repeats is not None else ""
            return f"filter_{f.column}", f"{f.column}={got:.6g} fails --filter {f}{also}"
    if sel.by == RANDOM or sel.method == "s2l":  # orders that read no --by value
        return _ifd_drop(row, ifd_limit)
    value = row.get(sel.by)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no_score", f"{sel.by} could not be computed"
    if sel.min is not None and value < sel.min:
        return "below_min", f"{sel.by}={value:.6g} < --min {sel.min:g}"
    if sel.max is not None and value > sel.max:
        return "above_max", f"{sel.by}={value:.6g} > --max {sel.max:g}"
    return _ifd_drop(row, ifd_limit)


def _ifd_drop(row: dict[str, Any], ifd_limit: float | None) -> tuple[str, str]:
    if ifd_limit is not None and row.get("ifd") is not None and row["ifd"] > ifd_limit:
        return "ifd_above_limit", f"ifd={row['ifd']:.6g} > {ifd_limit:g}: the prompt does not help"
    return "", ""
