"""``tamis clear DATA -o DIR``: CLEAR auto-filter and auto-correct as a job
(:mod:`tamis.clear.confidence`).

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

import shutil
import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import write_json, write_jsonl
from tamis.base.version import __version__
from tamis.clear.confidence import (
    CONFIDENCE_COLUMNS,
    ClearConfig,
    Correction,
    auto_correct,
    fill_confidence,
)
from tamis.data.outputs import rejected_item, write_scores, write_selection
from tamis.data.readers import Dataset
from tamis.data.records import with_response
from tamis.engines.options import EngineOptions, ScoringOptions
from tamis.engines.ray import (
    ENGINES,
    SHARD_DIR,
    ShardSpec,
    run_sharded,
    shard_payloads,
)
from tamis.model.loading import DEFAULT_MODEL
from tamis.model.render import resolve_template
from tamis.scorers.score import _bad_rows, encode_dataset
from tamis.select.selection import Selection, select

CORRECTION_COLUMNS = ("candidate_confidence", "preference")
LOW = "low_confidence"


@dataclass
class ClearJob(ScoringOptions, EngineOptions):
    """``tamis clear``: the shared options of :mod:`tamis.engines.options`, and these."""

    model: str = DEFAULT_MODEL
    precision: str = "auto"  # float32 on a CPU, bfloat16 on a GPU
    fresh: bool = False
    keep: int | float | None = 0.8  # the most confident records kept (before corrections)
    threshold: float | None = None  # drop confidence below this
    clear: ClearConfig = field(default_factory=ClearConfig)


def clear_job(data_path: str | Path, out_dir: str | Path, job: ClearJob, progress: bool = True):
    """Run CLEAR on ``data_path`` into ``out_dir``; returns the manifest."""
    from tamis.data.readers import read_dataset
    from tamis.engines.manifest import input_info, versions

    start = time.perf_counter()
    out_dir = Path(out_dir)
    job.clear.check()
    if job.batch_size < 1:
        raise TamisError(f"--batch-size {job.batch_size}: must be at least 1")
    if job.engine not in ENGINES:
        raise TamisError(f"unknown --engine '{job.engine}'; choose one of: {', '.join(ENGINES)}")
    if job.engine == "ray":
        job.ray.check()
    data = read_dataset(data_path, job.format, job.skip_bad, fields=job.fields)
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
        from tamis.engines.manifest import model_info, open_cache
        from tamis.model.embed import load_embedder
        from tamis.model.loading import load_model

        self.job, self.progress = job, progress
        self.lm = load_model(job.model, job.device, job.precision)
        self.embedder = load_embedder(job.device)
        template = resolve_template(job.template, self.lm.tokenizer)
        self.encoded, self.by_index = encode_dataset(
            data, self.lm.tokenizer, template, job.max_tokens
        )
        self.recs = {r.index: r for r in data.records if r.index in self.encoded}
        self.model = model_info(self.lm, template)
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
    """CLEAR's two model steps sharded over Ray actors (:mod:`tamis.engines.ray`): shards under
    ``OUT/shards/confidence`` and ``OUT/shards/correct``, reused on a re-run when complete."""

    def __init__(self, data, job: ClearJob, out_dir: Path, progress: bool):
        self.data, self.job, self.progress = data, job, progress
        self.folder = out_dir / SHARD_DIR
        if job.fresh:
            shutil.rmtree(self.folder, ignore_errors=True)
        from tamis.model.loading import resolve_precision

        precision = resolve_precision(job.precision, job.device)
        self.spec = ShardSpec(
            job.model, job.device, precision, job.template, job.max_tokens, job.batch_size, (),
            data.format, task="confidence", clear=asdict(job.clear), fields=data.fields,
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
    from tamis.engines.manifest import raw_by_index

    raws = raw_by_index(data)
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
