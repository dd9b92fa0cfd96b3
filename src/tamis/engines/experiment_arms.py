"""Which pool records each arm of ``tamis experiment`` trains on, per seed.

``full`` (the whole pool), ``random`` (a seeded draw per seed, at the same budget in records or
tokens), ``top-COL`` / ``lowest-COL`` (the best or worst budget by a score column), or with
``arms:`` one arm per ``tamis select`` selection (:data:`ARM_KEYS`), all from the small model's
scores of the pool (``scores/``).
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError

# What an arm in `arms` may set: `name` and these fields of tamis.select.selection.Selection.
ARM_KEYS = ("by", "method", "direction", "drop_junk_above", "drop_ifd_above", "clusters",
            "max_similarity")  # fmt: skip


def arms_of(cfg: Any, pool: list, scores_dir: Path, job=None) -> dict:
    """``{arm: seed -> pool indices}`` for ``cfg``, an
    :class:`~tamis.engines.experiment.ExperimentConfig` (not imported: ``experiment`` imports
    this module). ``job``: the target's
    :class:`~tamis.engines.train_job.TrainJob`, whose tokens ``budget_counts: target`` counts."""
    from tamis.data.outputs import read_scores
    from tamis.select.selection import Selection, select

    rows, columns = read_scores(scores_dir / "scores.parquet")
    if cfg.budget_counts == "target":
        from tamis.engines.target_tokens import FILE, train_tokens

        if job is None:
            raise ValueError("budget_counts: target needs the target's TrainJob")
        counts = train_tokens(job, scores_dir.parent / "data" / "pool.jsonl")
        if set(counts) != {r["index"] for r in rows}:
            raise TamisError(f"{scores_dir}: not the scores of the pool {FILE} counts; delete it")
        for r in rows:
            r["train_tokens"] = counts[r["index"]]
            if r["status"] == "ok" and not counts[r["index"]]:  # the target skips it
                r["status"], r["detail"] = "too_long", "the target skips it (target max_tokens)"
    n = len(pool)
    budget = cfg.budget if isinstance(cfg.budget, int) else int(cfg.budget * n)
    if not 0 < budget <= n:
        raise TamisError(f"budget {cfg.budget}: gives {budget} records of a pool of {n}")
    tokens = _token_budget(cfg, rows, columns)
    keep = {"keep_tokens": tokens} if tokens else {"keep": budget}

    def ranked(col: str, direction: str | None) -> list[int]:
        decisions = select(rows, Selection(by=col, direction=direction, **keep))
        return [d.index for d in decisions if d.kept]

    arms: dict[str, Any] = {"full": lambda seed: list(range(n))}
    if tokens:  # the random baseline at the same number of tokens, from the whole pool
        none = {"drop_junk_above": math.inf}
        draw = lambda seed: _picks(rows, Selection(by="random", seed=1000 + seed, **none, **keep))  # noqa: E731
    else:
        draw = lambda seed: sorted(random.Random(1000 + seed).sample(range(n), budget))  # noqa: E731
    if cfg.arms is not None:
        arms["random"] = draw
        vectors: dict[str, Any] = {}
        for name, sel in arm_selections(cfg.arms, keep).items():
            arms[name] = lambda seed, sel=sel: _picks(
                rows, replace(sel, seed=1000 + seed), _vectors(sel, vectors, scores_dir, rows)
            )
        return arms
    for col in cfg.scorers:
        top = ranked(col, None)
        arms[f"top-{col}"] = lambda seed, top=top: top
    arms["random"] = draw
    if cfg.lowest:
        col = cfg.scorers[0]
        default = Selection(by=col).resolved_direction()
        worst = ranked(col, "highest" if default == "lowest" else "lowest")
        arms[f"lowest-{col}"] = lambda seed, worst=worst: worst
    return arms


def _token_budget(cfg: Any, rows: list, columns: list) -> int | None:
    from tamis.select.methods import TOKEN_COLUMNS, record_tokens

    if cfg.budget_tokens is None:
        return None
    if cfg.budget_counts == "scorer" and not all(c in columns for c in TOKEN_COLUMNS):
        raise TamisError("budget_tokens needs the token counts: add 'tokens' to scorers")
    total = sum(record_tokens(r) for r in rows if r["status"] == "ok")
    b = cfg.budget_tokens
    tokens = b if isinstance(b, int) else int(b * total)
    if not 0 < tokens <= total:
        raise TamisError(f"budget_tokens {b}: gives {tokens} tokens of a pool of {total}")
    return tokens


def arm_selections(specs: list, keep: dict[str, Any]) -> dict[str, Any]:
    """``{name: Selection}`` of the config's ``arms`` under the budget ``keep``; an error names
    an arm named twice or an option it may not set."""
    names = [a.get("name") if isinstance(a, dict) else None for a in specs]
    twice = sorted({x for x in names if x and names.count(x) > 1})
    if twice:
        raise TamisError(f"arms: {', '.join(twice)} named twice; give each arm its own name")
    selections = {}
    for spec in specs:
        sel = _arm_selection(spec, keep)  # first: it checks that spec is a named mapping
        selections[spec["name"]] = sel
    return selections


def _arm_selection(spec: dict[str, Any], keep: dict[str, Any]):
    from tamis.select.selection import Selection

    if not isinstance(spec, dict) or not spec.get("name"):
        raise TamisError(f"arms: each arm needs a name and tamis select options, got {spec!r}")
    unknown = set(spec) - {"name", *ARM_KEYS}
    if unknown:
        raise TamisError(
            f"arms: {spec['name']}: unknown option(s) {', '.join(sorted(unknown))}; valid: "
            f"{', '.join(ARM_KEYS)}"
        )
    if spec["name"] in ("full", "random"):
        raise TamisError(f"arms: '{spec['name']}' is always run; give this arm another name")
    options = {k: v for k, v in spec.items() if k != "name"}
    for limit in ("drop_junk_above", "drop_ifd_above"):
        value = options.get(limit)
        if isinstance(value, str) and value.lower() == "none":
            options[limit] = math.inf
        elif limit in options and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise TamisError(
                f"arms: {spec['name']}: {limit} {value!r}: give a number, or none to turn it off"
            )
    return Selection(**options, **keep)


def _picks(rows: list, sel, vectors=None) -> list[int]:
    from tamis.select.selection import select

    return [d.index for d in select(rows, sel, vectors) if d.kept]


def _vectors(sel, cache: dict, scores_dir: Path, rows: list):
    """The pool's embeddings for a ``diverse`` arm, computed once."""
    if sel.method != "diverse":
        return None
    if "v" not in cache:
        from tamis.data.readers import read_dataset
        from tamis.engines.jobs import record_vectors

        data = read_dataset(scores_dir.parent / "data" / "pool.jsonl", skip_bad=True)
        cache["v"] = record_vectors(data, rows)
    return cache["v"]
