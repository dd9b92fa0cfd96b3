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
import shutil
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tamis import __version__
from tamis.clear import (
    CONFIDENCE_COLUMNS,
    ClearConfig,
    Correction,
    auto_correct,
    fill_confidence,
)
from tamis.errors import TamisError
from tamis.files import write_json, write_jsonl
from tamis.models import DEFAULT_MODEL
from tamis.outputs import rejected_item, write_scores, write_selection
from tamis.ray_engine import (
    ENGINES,
    SHARD_DIR,
    RayOptions,
    ShardSpec,
    add_ray_args,
    ray_options,
    run_sharded,
    shard_payloads,
)
from tamis.readers import Dataset
from tamis.records import FORMATS, with_response
from tamis.render import TEMPLATES, resolve_template
from tamis.score import DEFAULT_MAX_TOKENS, _bad_rows, encode_dataset
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
    engine: str = "local"  # or "ray": confidence and correction sharded over Ray actors
    ray: RayOptions = field(default_factory=RayOptions)


def clear_job(data_path: str | Path, out_dir: str | Path, job: ClearJob, progress: bool = True):
    """Run CLEAR on ``data_path`` into ``out_dir``; returns the manifest."""
    from tamis.jobs import input_info, versions
    from tamis.readers import read_dataset

    start = time.perf_counter()
    out_dir = Path(out_dir)
    job.clear.check()
    if job.batch_size < 1:
        raise TamisError(f"--batch-size {job.batch_size}: must be at least 1")
    if job.engine not in ENGINES:
        raise TamisError(f"unknown --engine '{job.engine}'; choose one of: {', '.join(ENGINES)}")
    if job.engine == "ray":
        job.ray.check()
    data = read_dataset(data_path, job.format, job.skip_bad)
    steps = _RaySteps if job.engine == "ray" else _LocalSteps
    with steps(data, job, out_dir, progress) as step:
        by_index, sampled = step.confidence()
        rows = [by_index[i] for i in sorted(by_index)]
        for row in rows:
            row.update(dict.fromkeys(CORRECTION_COLUMNS))
        decisions = select(rows, Selection("confidence", job.keep, "highest", job.threshold))
        low = [d.index for d in decisions if d.reason in ("ranked_out", "below_min")]
        corrections = []
        if job.clear.correct and low:
            confidences = {i: by_index[i]["confidence"] for i in low}
            corrections = step.correct(low, confidences, sampled)
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
        "model": step.model,
        "clear": {
            "config": {**asdict(job), "template": step.model["template"]},
            "columns": columns,
            "status_counts": dict(Counter(r["status"] for r in rows)),
            "truncated": sum(bool(r["truncated"]) for r in rows),
            "wall_s": wall,
            "records_per_minute": 60 * len(sampled) / wall if wall > 0 else None,
            **({"ray": step.stats} if job.engine == "ray" else {}),
        },
        "counts": counts,
        "versions": versions(("sentence-transformers",)),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


class _LocalSteps:
    """CLEAR's two model steps in this process, with the job's score cache."""

    def __init__(self, data, job: ClearJob, out_dir: Path, progress: bool):
        from tamis.embed import load_embedder
        from tamis.jobs import model_info, open_cache
        from tamis.models import load_model

        self.job, self.progress = job, progress
        self.lm = load_model(job.model, job.device)
        self.embedder = load_embedder(job.device)
        template = resolve_template(job.template, self.lm.tokenizer)
        self.encoded, self.by_index = encode_dataset(
            data, self.lm.tokenizer, template, job.max_tokens
        )
        self.recs = {r.index: r for r in data.records if r.index in self.encoded}
        self.model = {**model_info(self.lm), "template": template}
        self.cache = open_cache(out_dir, job.cache, job.fresh)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.cache.close()

    def confidence(self) -> tuple[dict[int, dict], dict[int, list[str]]]:
        """Every row with the confidence columns, and the sampled responses of the scored."""
        samples = fill_confidence(
            self.lm, self.recs, self.encoded, self.by_index, self.cache, self.job.clear,
            self.embedder, self.job.batch_size, self.progress,
        )  # fmt: skip
        return self.by_index, samples

    def correct(self, low: list[int], confidences: dict, samples: dict) -> list[Correction]:
        return auto_correct(
            self.lm, [self.recs[i] for i in low], [self.encoded[i] for i in low],
            [confidences[i] for i in low], [samples[i] for i in low], self.cache,
            self.job.clear, self.embedder, self.job.batch_size, self.progress,
        )  # fmt: skip


class _RaySteps:
    """CLEAR's two model steps sharded over Ray actors (:mod:`tamis.ray_engine`): shards under
    ``OUT/shards/confidence`` and ``OUT/shards/correct``, reused on a re-run when complete."""

    def __init__(self, data, job: ClearJob, out_dir: Path, progress: bool):
        self.data, self.job, self.progress = data, job, progress
        self.folder = out_dir / SHARD_DIR
        if job.fresh:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.spec = ShardSpec(
            job.model, job.device, "float32", job.template, job.max_tokens, job.batch_size, (),
            data.format, task="confidence", clear=asdict(job.clear),
        )  # fmt: skip
        self.model: dict = {}
        self.stats: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def confidence(self) -> tuple[dict[int, dict], dict[int, list[str]]]:
        payloads = shard_payloads(self.data, self.job.ray.shard_records)
        shards, self.model, self.stats["confidence"] = run_sharded(
            self.spec, self.job.ray, payloads, self.folder / "confidence", self.progress,
            "confidence on ray",
        )  # fmt: skip
        by_index = _bad_rows(self.data)
        for row in by_index.values():
            row.update(dict.fromkeys(CONFIDENCE_COLUMNS))
        samples = {}
        for row in (r for shard in shards for r in shard):
            texts = row.pop("samples")
            if texts is not None:
                samples[row["index"]] = texts
            by_index[row["index"]] = row
        return by_index, samples

    def correct(self, low: list[int], confidences: dict, samples: dict) -> list[Correction]:
        wanted = set(low)
        subset = Dataset(
            self.data.path, self.data.format, [r for r in self.data.records if r.index in wanted]
        )
        extra = {i: [confidences[i], samples[i]] for i in low}
        payloads = shard_payloads(subset, self.job.ray.shard_records, extra)
        shards, _, self.stats["correct"] = run_sharded(
            replace(self.spec, task="correct"), self.job.ray, payloads, self.folder / "correct",
            self.progress, "correcting on ray",
        )  # fmt: skip
        return [Correction(**row) for shard in shards for row in shard]


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
    p.add_argument("data", metavar="DATA", help="instruction data, as for tamis score")
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
    add_ray_args(p)
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
        engine=args.engine,
        ray=ray_options(args),
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
