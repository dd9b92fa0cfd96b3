"""The jobs behind ``tamis score``, ``tamis select`` and ``tamis run``: files in, output folder out.

These take names and paths (the edge); the work itself is done by the object API
(:func:`~tamis.data.readers.read_dataset`, :func:`~tamis.model.loading.load_model`,
:func:`~tamis.scorers.score.score_dataset`, :func:`~tamis.select.selection.select`).
"""

from __future__ import annotations

import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tamis.base.errors import TamisError
from tamis.base.files import write_json
from tamis.base.version import __version__
from tamis.data.outputs import (
    OUTPUT_FORMATS,
    read_scores,
    rejected_item,
    write_scores,
    write_selection,
)
from tamis.data.readers import Dataset, read_dataset
from tamis.data.sources import input_schema
from tamis.engines.manifest import (
    input_info,
    model_info,
    open_cache,
    raw_by_index,
    reread_input,
    score_section,
    versions,
)
from tamis.engines.options import EngineOptions, ScoringOptions
from tamis.engines.ray import ENGINES
from tamis.model.finetune import TrainConfig
from tamis.model.loading import DEFAULT_MODEL
from tamis.scorers import DEFAULT_SCORERS, JUDGE_SCORERS, JUNK, TextScorer, get_scorers
from tamis.scorers.cluster import cluster_scorer
from tamis.scorers.ensemble import METHODS as COMBINE_METHODS
from tamis.scorers.ensemble import merge_results, model_slug
from tamis.scorers.junk import add_junk
from tamis.select.methods import TOKEN_COLUMNS, record_tokens
from tamis.select.selection import Selection, check_columns, keep_count, select

LP = "lp"  # the training-dynamics scorer: not a per-record Scorer, run by the job itself


@dataclass
class ScoreConfig(ScoringOptions, EngineOptions):
    """``tamis score``: the shared options of :mod:`tamis.engines.options`, and these."""

    model: str = DEFAULT_MODEL
    scorers: tuple[str, ...] = DEFAULT_SCORERS
    precision: str = "auto"  # float32 on a CPU, bfloat16 on a GPU
    fresh: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)  # for --scorer lp
    ensemble: tuple[str, ...] = ()  # several models: every score combined by `combine`
    combine: str = "rank-mean"
    clusters: int | None = None  # for --scorer cluster; None: round(sqrt(n / 2))

    def columns(self) -> list[str]:
        """The score columns this configuration writes (checked before any long work)."""
        from tamis.scorers.lp import lp_columns

        names = [n for n in self.scorers if n != LP and n not in JUDGE_SCORERS]
        scorers = get_scorers(names)
        cols = [c for s in scorers for c in s.columns]
        if len(self.ensemble) > 1:
            model_cols = [c for s in scorers if not isinstance(s, TextScorer) for c in s.columns]
            slugs = [model_slug(m) for m in self.ensemble]
            cols += [f"{c}_disagreement" for c in model_cols]
            cols += [f"{c}__{slug}" for c in model_cols for slug in slugs]
        cols += [c for n in JUDGE_SCORERS if n in self.scorers for c in JUDGE_SCORERS[n]]
        cols += [JUNK] if JUNK in self.scorers else []
        return cols + (lp_columns(self.train.epochs) if LP in self.scorers else [])


def score_job(
    data_path: str | Path, out_dir: str | Path, cfg: ScoreConfig, progress: bool = True
) -> dict:
    """Score ``data_path`` into ``out_dir``: ``scores.parquet`` and ``manifest.json``."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_score_config(cfg)
    data = read_dataset(data_path, cfg.format, cfg.skip_bad, fields=cfg.fields)
    result, infos = score_records(data, cfg, out_dir, progress)
    write_scores(out_dir / "scores.parquet", result.rows, result.columns)
    manifest = {
        "tamis_version": __version__,
        "input": input_info(data_path, data),
        "model": infos[0],
        "models": infos,
        "score": {
            **score_section(cfg, result, result.columns),
            "job_wall_s": time.perf_counter() - start,
        },
        "versions": versions(),
    }
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def check_score_config(cfg: ScoreConfig) -> None:
    """Fail on a bad option or an unknown scorer name before anything is loaded."""
    _check_options(cfg)
    cfg.columns()
    cfg.train.check()


def score_records(data: Dataset, cfg: ScoreConfig, out_dir: Path, progress: bool = True):
    """``(ScoreResult, [model info])``: every record of ``data`` scored as ``cfg`` says (each
    model of an ensemble, LP, ratings, junk, the combined columns), with the score cache and LP's
    files in ``out_dir``. Writes no output: :func:`score_job` and :func:`tamis.engines.api.score`
    do."""
    scorers = [
        cluster_scorer(cfg.clusters, cfg.train.seed) if s.name == "cluster" else s
        for s in get_scorers([n for n in cfg.scorers if n != LP and n not in JUDGE_SCORERS])
    ]
    if cfg.engine == "ray":
        ray_scores, info = _score_on_ray(data, scorers, cfg, out_dir, progress)
        named, infos = [(info["name"], ray_scores)], [info]
    else:
        named, infos = _score_local(data, scorers, cfg, out_dir, progress)
    if JUNK in cfg.scorers:  # over the whole dataset; an ensemble's from its first model
        add_junk(named[0][1])
    result = named[0][1]
    if len(named) > 1:
        model_cols = [c for s in scorers if not isinstance(s, TextScorer) for c in s.columns]
        result = merge_results(named, model_cols, cfg.combine)
    return result, infos


def _score_local(data: Dataset, scorers, cfg: ScoreConfig, out_dir: Path, progress: bool):
    """``([(model name, ScoreResult)], [model info])``, one per model, in this process."""
    from tamis.model.loading import load_model
    from tamis.scorers.score import score_dataset

    models = cfg.ensemble if len(cfg.ensemble) > 1 else (cfg.model,)
    named, infos = [], []
    with open_cache(out_dir, cfg.cache, cfg.fresh) as cache:
        for i, name in enumerate(models):
            # LP trains the scorer model, which needs float32 weights, even on a GPU.
            lm = load_model(name, cfg.device, "float32" if LP in cfg.scorers else cfg.precision)
            # Text scorers need no model: computed once, with the first.
            these = scorers if i == 0 else [s for s in scorers if not isinstance(s, TextScorer)]
            result = score_dataset(
                data, lm, these, cache, cfg.template, cfg.max_tokens, cfg.batch_size, progress,
                keep_encoded=LP in cfg.scorers,
            )  # fmt: skip
            if "rating" in cfg.scorers:
                _add_rating(result, lm, data, cache, cfg.batch_size, progress)
            if LP in cfg.scorers:
                _add_lp(result, lm, cache, cfg, out_dir, progress)
            named.append((lm.name, result))
            infos.append(model_info(lm, result.template))
    return named, infos


def _score_on_ray(data: Dataset, scorers, cfg: ScoreConfig, out_dir: Path, progress: bool):
    """``(ScoreResult, model info)`` from the Ray engine; the same rows as the local engine."""
    from tamis.engines.ray import ShardSpec, ray_result, score_on_ray

    text = [s for s in scorers if isinstance(s, TextScorer)]
    model_scorers = [s for s in scorers if not isinstance(s, TextScorer)]
    spec = ShardSpec(
        cfg.model, cfg.device, cfg.precision, cfg.template, cfg.max_tokens, cfg.batch_size,
        tuple(s.name for s in model_scorers), data.format, fields=data.fields,
    )  # fmt: skip
    if cfg.fresh:
        import shutil

        shutil.rmtree(out_dir / "shards", ignore_errors=True)
    scored, template, info, stats = score_on_ray(data, spec, cfg.ray, out_dir, progress)
    columns = [c for s in model_scorers for c in s.columns]
    result = ray_result(data, text, columns, scored, template, stats)
    return result, {**info, "template": template}


def _add_rating(result, lm, data: Dataset, cache, batch_size: int, progress: bool) -> None:
    from tamis.scorers.judge import rating
    from tamis.scorers.score import progress_bar

    scored = {row["index"] for row in result.rows if row["status"] == "ok"}
    records = [r for r in data.records if r.index in scored]
    bar = progress_bar(len(records), progress, "rating")
    values = rating(lm, records, cache, batch_size, bar.update)
    bar.close()
    by_index = {r.index: v for r, v in zip(records, values, strict=True)}
    for row in result.rows:
        score, mass = by_index.get(row["index"], (None, None))
        row.update(rating=score, rating_mass=mass)
    result.columns.extend(JUDGE_SCORERS["rating"])


def _add_lp(result, lm, cache, cfg: ScoreConfig, out_dir: Path, progress: bool) -> None:
    from tamis.scorers.lp import learning_percentage_scores, lp_columns

    work: dict[str, int] = {}
    values = learning_percentage_scores(
        lm, result.encoded, cache, cfg.train, out_dir / "lp", cfg.batch_size, progress, stats=work
    )
    result.stats["lp"] = {"epochs": cfg.train.epochs, **work}
    for row in result.rows:
        row.update(values.get(row["index"], dict.fromkeys(lp_columns(cfg.train.epochs))))
    result.columns.extend(lp_columns(cfg.train.epochs))


def select_job(out_dir: str | Path, sel: Selection, output_format: str = "jsonl") -> dict:
    """Select from a scored folder: writes ``selected.jsonl`` and ``rejected.jsonl`` (or, with
    ``output_format="parquet"``, ``selected.parquet`` and ``rejected.parquet``), and updates the
    manifest with the selection and counts per reason."""
    if output_format not in OUTPUT_FORMATS:
        raise TamisError(
            f"output format '{output_format}': choose one of {', '.join(OUTPUT_FORMATS)}"
        )
    start = time.perf_counter()
    out_dir = Path(out_dir)
    manifest = _load_manifest(out_dir)
    rows, columns = read_scores(out_dir / "scores.parquet")
    check_columns(sel, columns)  # before re-reading the input and the embeddings diverse needs
    data = reread_input(manifest)
    vectors = record_vectors(data, rows) if sel.method == "diverse" else None
    decisions = select(rows, sel, vectors)
    raws = raw_by_index(data)
    kept, rejected = [], []
    for row, d in zip(rows, decisions, strict=True):
        if d.kept:
            kept.append(raws[d.index][1])
        else:
            where, raw = raws[d.index]
            rejected.append(rejected_item(row["id"], where, raw, d.reason, d.detail))
    if len(kept) + len(rejected) != manifest["input"]["records"]:
        raise RuntimeError("internal error: selection lost records; please report this")
    schema = input_schema(manifest["input"]["path"]) if output_format == "parquet" else None
    write_selection(out_dir, kept, rejected, output_format, schema)
    manifest["selection"] = {
        **asdict(sel),
        "direction": sel.resolved_direction(),
        "drop_ifd_above": sel.ifd_limit(),
        "drop_junk_above": sel.junk_limit(columns),
        "output_format": output_format,
        "wall_s": time.perf_counter() - start,
    }
    manifest["counts"] = {
        "input": len(rows),
        "selected": len(kept),
        "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in rejected).items())),
        "junk_by_signal": junk_counts(rejected),
        "scored": sum(r["status"] == "ok" for r in rows),
    }
    if sel.keep is not None:  # the budget in records, to say when fewer passed the filters
        manifest["counts"]["asked"] = keep_count(sel.keep, manifest["counts"]["scored"])
    if all(c in columns for c in TOKEN_COLUMNS):  # what the selection costs to train on
        tokens = [(d.kept, record_tokens(r)) for r, d in zip(rows, decisions, strict=True)
                  if r["status"] == "ok"]  # fmt: skip
        manifest["counts"]["input_tokens"] = sum(t for _, t in tokens)
        manifest["counts"]["selected_tokens"] = sum(t for kept, t in tokens if kept)
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def record_vectors(data: Dataset, rows: list[dict[str, Any]]) -> dict[int, Any]:
    """``{index: unit vector}``: the MiniLM embedding of each scored record's prompt and response,
    for ``--method diverse``."""
    from tamis.model.embed import embed_texts, prompt_text

    ok = {r["index"] for r in rows if r["status"] == "ok"}
    records = [r for r in data.records if r.index in ok]
    texts = [f"{prompt_text(r)}\n\n{r.response}" for r in records]
    vectors = embed_texts(texts) if texts else []
    return {r.index: v for r, v in zip(records, vectors, strict=True)}


def junk_counts(rejected: list[dict[str, Any]]) -> dict[str, int]:
    """``{signal: records}`` the junk filter dropped (reasons ``junk_<signal>``), most first."""
    counts = Counter(r["reason"][5:] for r in rejected if r["reason"].startswith("junk_"))
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _check_options(cfg: ScoreConfig) -> None:
    if cfg.batch_size < 1:
        raise TamisError(f"--batch-size {cfg.batch_size}: must be at least 1")
    if cfg.combine not in COMBINE_METHODS:
        raise TamisError(
            f"unknown --combine '{cfg.combine}'; choose one of: {', '.join(COMBINE_METHODS)}"
        )
    if len(cfg.ensemble) > 1 and LP in cfg.scorers:
        raise TamisError("--scorer lp takes one model; run it per model, or drop the extra --model")
    if len(cfg.ensemble) > 1 and "rating" in cfg.scorers:
        raise TamisError(
            "--scorer rating takes one judge model; run it per model, or drop the extra --model"
        )
    if len(set(cfg.ensemble)) != len(cfg.ensemble):
        raise TamisError(f"--model given twice: {', '.join(cfg.ensemble)}; name each model once")
    if cfg.clusters is not None and cfg.clusters < 1:
        raise TamisError(f"--clusters {cfg.clusters}: must be at least 1")
    if cfg.max_tokens < 8:
        raise TamisError(f"--max-tokens {cfg.max_tokens}: must be at least 8")
    if cfg.engine not in ENGINES:
        raise TamisError(f"unknown --engine '{cfg.engine}'; choose one of: {', '.join(ENGINES)}")
    if cfg.engine == "ray":
        cfg.ray.check()
        unsupported = [n for n in cfg.scorers if n in (LP, *JUDGE_SCORERS)]
        if unsupported or len(cfg.ensemble) > 1:
            what = f"--scorer {unsupported[0]}" if unsupported else "an ensemble of models"
            raise TamisError(f"{what} is not available with --engine ray yet; use --engine local")
    if LP in cfg.scorers and cfg.precision == "bfloat16":
        raise TamisError(
            "--scorer lp keeps float32 weights and scores P0..Pn in float32; use --precision "
            "float32 (--lp-precision bfloat16 trains in mixed precision)"
        )


def _load_manifest(out_dir: Path) -> dict:
    path = out_dir / "manifest.json"
    if not path.is_file() or not (out_dir / "scores.parquet").is_file():
        raise TamisError(
            f"{out_dir}: no scores here (manifest.json and scores.parquet); "
            f"run 'tamis score DATA -o {out_dir}' first"
        )
    try:
        manifest = json.loads(path.read_text())
    except ValueError as e:
        raise TamisError(f"{path}: not valid JSON ({e}); re-run tamis score") from None
    if "clear" in manifest:
        raise TamisError(
            f"{out_dir} was written by tamis clear; to keep another share, re-run tamis clear "
            "with a new --keep or --threshold (the samples and judgements come from its cache)"
        )
    return manifest
