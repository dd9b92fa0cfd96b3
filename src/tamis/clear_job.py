"""``tamis clear DATA -o DIR``: CLEAR auto-filter and auto-correct as a job (:mod:`tamis.clear`).

Outputs, besides ``scores.parquet`` (the confidence columns, plus ``candidate_confidence`` and
``preference`` for the records auto-correct tried) and ``manifest.json``:

- ``selected.jsonl``: the records kept as they are (input objects verbatim);
- ``corrected.jsonl``: the curated dataset: the kept records and the corrected ones with their
  new response (the field the response was read from, nothing else changed), in input order;
- ``corrections.jsonl``: every record auto-correct tried: id, original, candidate, both
  confidences, the preference, whether it was applied and why;
- ``rejected.jsonl``: records dropped (``low_confidence`` when not corrected, or the bad-input
  and ``too_long`` reasons), as in ``tamis run``.

``selected + corrected-only + rejected = input``, checked on every run. Generations and judge
probabilities go through the score cache, so a killed run re-run recomputes only what was lost.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tamis import __version__
from tamis.clear import CONFIDENCE_COLUMNS, ClearConfig, auto_correct, confidence_scores
from tamis.errors import TamisError
from tamis.files import write_json, write_jsonl
from tamis.models import DEFAULT_MODEL
from tamis.outputs import rejected_item, write_scores, write_selection
from tamis.records import FORMATS, with_response
from tamis.render import TEMPLATES, resolve_template
from tamis.score import DEFAULT_MAX_TOKENS, encode_dataset
from tamis.select import Selection, parse_keep, select

CORRECTION_COLUMNS = ("candidate_confidence", "preference")
LOW = "low_confidence"


@dataclass
class ClearJob:
    model: str = DEFAULT_MODEL
    format: str | None = None
    skip_bad: bool = False
    template: str = "auto"
    max_tokens: int = DEFAULT_MAX_TOKENS
    batch_size: int = 8
    device: str = "cpu"
    cache: str | None = None  # default: OUT/cache/nll.sqlite
    fresh: bool = False
    keep: int | float | None = 0.8  # the most confident records kept (before corrections)
    threshold: float | None = None  # drop confidence below this
    clear: ClearConfig = field(default_factory=ClearConfig)


def clear_job(data_path: str | Path, out_dir: str | Path, job: ClearJob, progress: bool = True):
    """Run CLEAR on ``data_path`` into ``out_dir``; returns the manifest."""
    from tamis.embed import load_embedder
    from tamis.jobs import input_info, model_info, open_cache, versions
    from tamis.models import load_model
    from tamis.readers import read_dataset

    start = time.perf_counter()
    out_dir = Path(out_dir)
    job.clear.check()
    if job.batch_size < 1:
        raise TamisError(f"--batch-size {job.batch_size}: must be at least 1")
    data = read_dataset(data_path, job.format, job.skip_bad)
    lm = load_model(job.model, job.device)
    embedder = load_embedder(job.device)
    template = resolve_template(job.template, lm.tokenizer)
    encoded, by_index = encode_dataset(data, lm.tokenizer, template, job.max_tokens)
    recs = {r.index: r for r in data.records if r.index in encoded}
    order = sorted(encoded)
    with open_cache(out_dir, job.cache, job.fresh) as cache:
        conf, samples = confidence_scores(
            lm, [recs[i] for i in order], [encoded[i] for i in order], cache, job.clear,
            embedder, job.batch_size, progress,
        )  # fmt: skip
        rows = [by_index[i] for i in sorted(by_index)]
        for row in rows:
            row.update(dict.fromkeys((*CONFIDENCE_COLUMNS, *CORRECTION_COLUMNS)))
        for i, values in zip(order, conf, strict=True):
            by_index[i].update(values)
        decisions = select(rows, Selection("confidence", job.keep, "highest", job.threshold))
        low = [d.index for d in decisions if d.reason in ("ranked_out", "below_min")]
        sampled = dict(zip(order, samples, strict=True))
        corrections = []
        if job.clear.correct and low:
            corrections = auto_correct(
                lm, [recs[i] for i in low], [encoded[i] for i in low],
                [by_index[i]["confidence"] for i in low], [sampled[i] for i in low], cache,
                job.clear, embedder, job.batch_size, progress,
            )  # fmt: skip
    for c in corrections:
        by_index[c.index].update(
            candidate_confidence=c.candidate_confidence, preference=c.preference
        )
    columns = [*CONFIDENCE_COLUMNS, *CORRECTION_COLUMNS]
    write_scores(out_dir / "scores.parquet", rows, columns)
    counts = _write_outputs(out_dir, data, rows, decisions, corrections)
    wall = time.perf_counter() - start
    manifest = {
        "tamis_version": __version__,
        "input": input_info(data_path, data),
        "model": {**model_info(lm), "template": template},
        "clear": {
            "config": {**asdict(job), "template": template},
            "columns": columns,
            "status_counts": dict(Counter(r["status"] for r in rows)),
            "truncated": sum(bool(r["truncated"]) for r in rows),
            "wall_s": wall,
            "records_per_minute": 60 * len(order) / wall if wall > 0 else None,
        },
        "counts": counts,
        "versions": versions(("sentence-transformers",)),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _write_outputs(out_dir: Path, data, rows, decisions, corrections) -> dict[str, Any]:
    from tamis.jobs import _raw_by_index

    raws = _raw_by_index(data)
    recs = {r.index: r for r in data.records}
    applied = {c.index: c for c in corrections if c.applied}
    kept, curated, rejected = [], [], []
    for row, d in zip(rows, decisions, strict=True):
        where, raw = raws[d.index]
        if d.kept:
            kept.append(raw)
            curated.append(raw)
        elif d.index in applied:
            curated.append(with_response(recs[d.index], data.format, applied[d.index].candidate))
        else:
            reason = LOW if d.reason in ("ranked_out", "below_min") else d.reason
            rejected.append(rejected_item(row["id"], where, raw, reason, d.detail))
    if len(kept) + len(applied) + len(rejected) != len(rows):
        raise RuntimeError("internal error: clear lost records; please report this")
    write_selection(out_dir, kept, rejected)
    write_jsonl(out_dir / "corrected.jsonl", curated)
    items = []
    for c in corrections:
        item = {"id": c.id, "where": raws[c.index][0], **asdict(c)}
        item["replacement"] = item.pop("candidate")
        del item["index"]
        items.append(item)
    write_jsonl(out_dir / "corrections.jsonl", items)
    return {
        "input": len(rows),
        "selected": len(kept),
        "corrected": len(applied),
        "curated": len(curated),
        "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in rejected).items())),
        "corrections_tried": len(corrections),
        "corrections_by_reason": dict(sorted(Counter(c.reason for c in corrections).items())),
    }


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``clear`` subcommand to the ``tamis`` parser."""
    from tamis.cli import HelpFormatter

    p = subparsers.add_parser(
        "clear",
        help="CLEAR: drop low-confidence records, correct the ones the model can fix",
        description="Estimate the model's confidence that each response is good (consistency "
        "with k sampled responses + self-reflection read from logits), drop the least confident "
        "(low_confidence) and replace a dropped record's response with a generated one only "
        "when the model prefers it in both orders and is more confident in it. Writes "
        "corrected.jsonl (the curated data), corrections.jsonl, selected.jsonl, rejected.jsonl, "
        "scores.parquet, manifest.json and report.html.",
        formatter_class=HelpFormatter,
    )
    p.add_argument("data", metavar="DATA", type=Path, help="instruction data, as for tamis score")
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument("--model", default=DEFAULT_MODEL, help="the model that samples and judges")
    p.add_argument(
        "--keep",
        default="0.8",
        help="the most confident records kept as they are: a count or a fraction; the rest are "
        "auto-corrected or dropped",
    )
    p.add_argument("--threshold", type=float, default=None, help="also drop confidence below this")
    c = p.add_argument_group("confidence")
    c.add_argument("--samples", type=int, default=3, help="sampled responses k per record")
    c.add_argument("--temperature", type=float, default=0.8, help="sampling temperature")
    c.add_argument("--max-new-tokens", type=int, default=128, help="tokens per sample")
    c.add_argument("--beta", type=float, default=0.7, help="weight of consistency vs reflection")
    c.add_argument(
        "--semantic-weight", type=float, default=0.5, help="MiniLM cosine vs token F1 weight"
    )
    c.add_argument("--seed", type=int, default=0, help="sampling seed")
    a = p.add_argument_group("auto-correct")
    a.add_argument("--no-correct", action="store_true", help="only filter; change no response")
    a.add_argument("--best-of", type=int, default=1, help="1: greedy candidate; n: best of n")
    a.add_argument("--correct-max-new-tokens", type=int, default=256, help="tokens per candidate")
    a.add_argument(
        "--prefer-threshold",
        type=float,
        default=0.6,
        help="replace only when P(candidate better), mean of both orders, is at least this",
    )
    g = p.add_argument_group("input and running")
    g.add_argument("--format", choices=FORMATS, default=None, help="as for tamis score")
    g.add_argument("--template", choices=TEMPLATES, default="auto", help="as for tamis score")
    g.add_argument("--skip-bad", action="store_true", help="set bad records aside, as for run")
    g.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help="context limit")
    g.add_argument("--batch-size", type=int, default=8, help="sequences per batch")
    g.add_argument("--device", default="cpu", help="cpu or cuda")
    g.add_argument("--cache", default=None, metavar="PATH", help="cache file (DIR/cache/...)")
    g.add_argument("--fresh", action="store_true", help="discard the cache and start again")
    g.add_argument("-q", "--quiet", action="store_true", help="no progress bars or summary")
    p.set_defaults(func=_cmd_clear)
    return p


def _cmd_clear(args: argparse.Namespace) -> int:
    job = ClearJob(
        model=args.model,
        format=args.format,
        skip_bad=args.skip_bad,
        template=args.template,
        max_tokens=args.max_tokens,
        batch_size=args.batch_size,
        device=args.device,
        cache=args.cache,
        fresh=args.fresh,
        keep=parse_keep(args.keep),
        threshold=args.threshold,
        clear=ClearConfig(
            samples=args.samples,
            temperature=args.temperature,
            max_new_tokens=args.max_new_tokens,
            beta=args.beta,
            semantic_weight=args.semantic_weight,
            seed=args.seed,
            correct=not args.no_correct,
            best_of=args.best_of,
            correct_max_new_tokens=args.correct_max_new_tokens,
            prefer_threshold=args.prefer_threshold,
        ),
    )
    from tamis.report import write_report_after_job

    manifest = clear_job(args.data, args.out, job, progress=not args.quiet)
    write_report_after_job(args.out, args.quiet)  # last: the job's outputs are complete
    if not args.quiet:
        c, s = manifest["counts"], manifest["clear"]
        print(
            f"kept {c['selected']} of {c['input']}, corrected {c['corrected']} "
            f"(of {c['corrections_tried']} tried) -> {args.out / 'corrected.jsonl'}; rejected "
            f"{c['rejected']} {json.dumps(c['rejected_by_reason'])}; "
            f"{s['records_per_minute']:.1f} records/min",
            file=sys.stderr,
        )
    return 0
