"""The noise benchmark over several corruption seeds: AUROC per score and kind (mean and standard
deviation over seeds), the hard set, what the junk filter drops, and what ``tamis run --keep 0.5``
keeps. Called by ``benchmarks/noise.py --seeds 0,1,2``.

- **Hard set**: the kinds that likelihood *prefers*: in more than half of their corrupted records,
  ``ppl`` of the corrupted response is lower than ``ppl`` of its clean original (the same record
  scored in the clean sample). Reported apart: AUROC of each score over those kinds against the
  clean records.
- **Junk at its cut**: the share of each kind with ``junk > 0`` (what the default run drops), the
  share of the pool's clean records dropped, and the signal that fired.
- **Kept half**: :func:`tamis.select.selection.select` with the defaults of ``tamis run --keep 0.5``
  (the junk filter, then a seeded random half), a random half without the filter, and both again
  ranked by the lowest ``ppl`` (``--by ppl``, tamis' default before the selection experiment):
  the share of corrupted records among the kept.
- **Clean data**: the clean sample scored on its own (junk computed over it alone): the share
  ``junk`` drops, per signal, with the dropped records' ids and details.
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
from noise import auroc, evaluate, score_noisy

from tamis.base.files import write_jsonl
from tamis.data.noise import KINDS, corrupt, write_corrupted
from tamis.select.selection import Selection, select

FACT_KINDS = ("number",)  # a changed number or name: facts a small model cannot know


def run_seeds(args, clean: list[dict], seeds: list[int]) -> dict:
    """Everything above, for ``clean`` corrupted with each of ``seeds``."""
    from tamis.model.loading import load_model

    lm = load_model(args.model, args.device)
    clean_path = args.out / "clean" / "clean.jsonl"
    write_jsonl(clean_path, clean)
    clean_rows, _, info = score_noisy(clean_path, args, lm)
    per_seed, prefer = {}, Counter()
    totals = Counter()
    for seed in seeds:
        objects, labels = corrupt(clean, args.rate, seed, args.kinds)
        noisy, _ = write_corrupted(args.out / f"seed{seed}", objects, labels)
        rows, columns, _ = score_noisy(noisy, args, lm)
        results, skipped = evaluate(rows, columns, labels, seed)
        kinds = np.array([label["kind"] or "" for label in labels])
        for i, kind in enumerate(kinds):
            a, b = rows[i].get("ppl"), clean_rows[i].get("ppl")
            if kind and a is not None and b is not None:
                prefer[kind] += a < b
                totals[kind] += 1
        per_seed[seed] = {
            "results": results,
            "skipped": skipped,
            "kinds": kinds,
            "rows": rows,
            "junk_at_cut": junk_at_cut(rows, kinds) if "junk" in columns else None,
            "kept_half": kept_half(rows, kinds, "junk" in columns),
        }
    share = {k: prefer[k] / totals[k] for k in totals}
    hard = [k for k in KINDS if share.get(k, 0) > 0.5]
    columns = [c for c in per_seed[seeds[0]]["results"]]
    summary = {c: aggregate(per_seed, c, hard) for c in columns}
    return {
        **info,
        "seeds": seeds,
        "ppl_prefers_share": share,
        "hard_kinds": hard,
        "summary": summary,
        "junk_at_cut": _mean_dicts([s["junk_at_cut"] for s in per_seed.values()]),
        "kept_half": _mean_dicts([s["kept_half"] for s in per_seed.values()]),
        "clean_only": clean_only(clean_rows),
        "per_seed": {
            s: {k: v for k, v in d.items() if k in ("results", "junk_at_cut", "kept_half")}
            for s, d in per_seed.items()
        },
    }


def aggregate(per_seed: dict, column: str, hard: list[str]) -> dict:
    """Mean and standard deviation over seeds of a column's AUROC: overall, without the fact
    kinds, on the hard set, and per kind."""

    def stats(values):
        values = [v for v in values if v is not None]
        if not values:
            return None
        return {"mean": float(np.mean(values)), "sd": float(np.std(values, ddof=1))
                if len(values) > 1 else 0.0}  # fmt: skip

    overall, no_facts, hard_set, by_kind = [], [], [], {}
    for seed, d in per_seed.items():
        r = d["results"].get(column)
        if r is None:
            continue
        overall.append(r["auroc"])
        values = np.array([np.nan if x.get(column) is None else x[column] for x in d["rows"]])
        if column == "random":  # the baseline evaluate() drew for this seed
            values = np.random.default_rng(seed).random(len(values))
        suspicion = values if r["better"] == "lower" else -values
        ok = ~np.isnan(suspicion)
        no_facts.append(_auroc_over(suspicion, d["kinds"], ok, exclude=FACT_KINDS))
        hard_set.append(_auroc_over(suspicion, d["kinds"], ok, only=hard) if hard else None)
        for k, v in r["auroc_by_kind"].items():
            by_kind.setdefault(k, []).append(v)
    return {
        "auroc": stats(overall),
        "auroc_without_facts": stats(no_facts),
        "auroc_hard_set": stats(hard_set),
        "auroc_by_kind": {k: stats(v) for k, v in by_kind.items()},
    }


def _auroc_over(suspicion, kinds, ok, exclude=(), only=None) -> float | None:
    keep = ok & ~np.isin(kinds, list(exclude))
    if only is not None:
        keep &= (kinds == "") | np.isin(kinds, only)
    return auroc(suspicion[keep], kinds[keep] != "")


def junk_at_cut(rows: list[dict], kinds: np.ndarray) -> dict:
    """Share of each kind (and of the clean records) with ``junk > 0``, and the signals that
    fired on corrupted records."""
    fired = np.array([(r.get("junk") is not None and r["junk"] > 0) for r in rows])
    out = {
        k or "clean": float(fired[kinds == k].mean()) for k in ["", *KINDS] if (kinds == k).any()
    }
    out["all_corrupted"] = float(fired[kinds != ""].mean())
    signals = Counter(
        r["junk_signal"] for r, f, k in zip(rows, fired, kinds, strict=True) if f and k
    )
    out["signals_on_corrupted"] = dict(signals.most_common())
    return out


def kept_half(rows: list[dict], kinds: np.ndarray, has_junk: bool) -> dict:
    """Share of corrupted records among the records ``tamis run --keep 0.5`` keeps, with the junk
    filter (the default) and without it (``--drop-junk-above none``), in the default order (a
    seeded random sample) and by the lowest ``ppl``."""
    out = {}
    arms = {
        "default": Selection(keep=0.5),
        "no_junk_filter": Selection(keep=0.5, drop_junk_above=math.inf),
        "lowest_ppl": Selection(keep=0.5, by="ppl"),
        "lowest_ppl_no_junk_filter": Selection(keep=0.5, by="ppl", drop_junk_above=math.inf),
    }
    for name, sel in arms.items():
        if name in ("default", "lowest_ppl") and not has_junk:
            continue
        kept = np.array([d.kept for d in select(rows, sel)])
        out[name] = {"kept": int(kept.sum()), "corrupted_share": float((kinds[kept] != "").mean())}
        out[name]["by_kind"] = dict(Counter(k for k in kinds[kept] if k))
    return out


def clean_only(rows: list[dict]) -> dict:
    """What junk drops from the clean sample scored on its own."""
    ok = [r for r in rows if r["status"] == "ok" and r.get("junk") is not None]
    dropped = [r for r in ok if r["junk"] > 0]
    return {
        "records": len(ok),
        "dropped": len(dropped),
        "share": len(dropped) / len(ok) if ok else None,
        "by_signal": dict(Counter(r["junk_signal"] for r in dropped).most_common()),
        "examples": [
            {"id": r["id"], "signal": r["junk_signal"], "detail": r["junk_detail"]}
            for r in sorted(dropped, key=lambda r: -r["junk"])
        ],
    }


def _mean_dicts(items: list) -> dict | None:
    """Means of the numbers of equally shaped nested dicts; counts are summed."""
    items = [i for i in items if i is not None]
    if not items:
        return None
    out = {}
    for key in items[0]:
        values = [i.get(key) for i in items]
        if isinstance(values[0], dict):
            if all(isinstance(v, (int, float)) for d in values for v in d.values()) and key in (
                "signals_on_corrupted",
                "by_kind",
            ):
                total = Counter()
                for d in values:
                    total.update(d)
                out[key] = dict(total.most_common())
            else:
                out[key] = _mean_dicts(values)
        elif isinstance(values[0], (int, float)):
            out[key] = float(np.mean(values))
    return out


def markdown(study: dict, kinds: list[str]) -> str:
    """The per-kind table: AUROC mean ± sd over seeds per score, then the junk filter's catch."""

    def cell(s):
        return "–" if s is None else f"{s['mean']:.3f} ± {s['sd']:.3f}"

    hard = study["hard_kinds"]
    head = [
        "score",
        "AUROC",
        "without facts",
        "hard set",
        *[k + ("*" if k in hard else "") for k in kinds],
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, s in study["summary"].items():
        cells = [name, cell(s["auroc"]), cell(s["auroc_without_facts"]), cell(s["auroc_hard_set"])]
        cells += [cell(s["auroc_by_kind"].get(k)) for k in kinds]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
