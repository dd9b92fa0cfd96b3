"""The jobs behind ``tamis score``, ``tamis select`` and ``tamis run``: files in, output folder out.

These take names and paths (the edge); the work itself is done by the object API
(:func:`~tamis.readers.read_dataset`, :func:`~tamis.models.load_model`,
:func:`~tamis.score.score_dataset`, :func:`~tamis.select.select`).
"""

from __future__ import annotations

import json
import platform
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tamis import __version__
from tamis.ensemble import METHODS as COMBINE_METHODS
from tamis.ensemble import merge_results, model_slug
from tamis.errors import TamisError
from tamis.files import file_sha256, write_json
from tamis.models import DEFAULT_MODEL
from tamis.outputs import read_scores, rejected_item, write_scores, write_selection
from tamis.ray_engine import ENGINES, RayOptions
from tamis.readers import Dataset, read_again, read_dataset
from tamis.score import DEFAULT_MAX_TOKENS
from tamis.scorers import DEFAULT_SCORERS, JUDGE_SCORERS, JUNK, TextScorer, get_scorers
from tamis.scorers.cluster import cluster_scorer
from tamis.scorers.junk import add_junk
from tamis.select import Selection, check_columns, select
from tamis.selectors import TOKEN_COLUMNS, record_tokens
from tamis.train import TrainConfig

LP = "lp"  # the training-dynamics scorer: not a per-record Scorer, run by the job itself


@dataclass
class ScoreConfig:
    model: str = DEFAULT_MODEL
    format: str | None = None
    skip_bad: bool = False
    template: str = "auto"
    max_tokens: int = DEFAULT_MAX_TOKENS
    batch_size: int = 8
    scorers: tuple[str, ...] = DEFAULT_SCORERS
    device: str = "cpu"
    precision: str = "auto"  # float32 on a CPU, bfloat16 on a GPU
    cache: str | None = None  # default: OUT/cache/nll.sqlite
    fresh: bool = False
    train: TrainConfig = field(default_factory=TrainConfig)  # for --scorer lp
    ensemble: tuple[str, ...] = ()  # several models: every score combined by `combine`
    combine: str = "rank-mean"
    clusters: int | None = None  # for --scorer cluster; None: round(sqrt(n / 2))
    engine: str = "local"  # or "ray": shards scored by a pool of Ray actors
    ray: RayOptions = field(default_factory=RayOptions)

    def columns(self) -> list[str]:
        """The score columns this configuration writes (checked before any long work)."""
        from tamis.lp import lp_columns

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
    _check_options(cfg)
    cfg.columns()  # unknown scorer names fail here, before any loading
    cfg.train.check()
    scorers = [
        cluster_scorer(cfg.clusters, cfg.train.seed) if s.name == "cluster" else s
        for s in get_scorers([n for n in cfg.scorers if n != LP and n not in JUDGE_SCORERS])
    ]
    data = read_dataset(data_path, cfg.format, cfg.skip_bad)
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


def _score_local(data: Dataset, scorers, cfg: ScoreConfig, out_dir: Path, progress: bool):
    """``([(model name, ScoreResult)], [model info])``, one per model, in this process."""
    from tamis.models import load_model
    from tamis.score import score_dataset

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
            infos.append({**model_info(lm), "template": result.template})
    return named, infos


def _score_on_ray(data: Dataset, scorers, cfg: ScoreConfig, out_dir: Path, progress: bool):
    """``(ScoreResult, model info)`` from the Ray engine; the same rows as the local engine."""
    from tamis.ray_engine import ShardSpec, ray_result, score_on_ray

    text = [s for s in scorers if isinstance(s, TextScorer)]
    model_scorers = [s for s in scorers if not isinstance(s, TextScorer)]
    spec = ShardSpec(
        cfg.model, cfg.device, cfg.precision, cfg.template, cfg.max_tokens, cfg.batch_size,
        tuple(s.name for s in model_scorers), data.format,
    )  # fmt: skip
    if cfg.fresh:
        import shutil

        shutil.rmtree(out_dir / "shards", ignore_errors=True)
    scored, template, info, stats = score_on_ray(data, spec, cfg.ray, out_dir, progress)
    columns = [c for s in model_scorers for c in s.columns]
    result = ray_result(data, text, columns, scored, template, stats)
    return result, {**info, "template": template}


def open_cache(out_dir: Path, cache: str | None, fresh: bool = False):
    """The job's score cache: ``cache`` when given, else ``OUT/cache/nll.sqlite``; ``fresh``
    deletes it first."""
    from tamis.cache import ScoreCache

    path = Path(cache) if cache else Path(out_dir) / "cache" / "nll.sqlite"
    if fresh and path.exists():
        path.unlink()
    return ScoreCache(path)


def input_info(data_path: str | Path, data: Dataset) -> dict[str, Any]:
    """The manifest's ``input``: what ``tamis select`` re-reads and checks. A URL is kept as
    given, with the sha256 of the bytes that were read (``data.sha256``)."""
    from tamis.remote import is_url

    if is_url(data_path):
        return {
            "path": data_path,
            "sha256": data.sha256,
            "format": data.format,
            "records": data.n_input,
        }
    path = Path(data_path)
    return {
        "path": str(path.resolve()),
        "sha256": file_sha256(path),
        "format": data.format,
        "records": data.n_input,
    }


def model_info(lm) -> dict[str, Any]:
    """A manifest's description of a loaded model."""
    return {
        "name": lm.name,
        "source": str(lm.source),
        "sha256": lm.sha256,
        "device": lm.device,
        "precision": lm.precision,
    }


def score_section(cfg, result, columns: list[str]) -> dict[str, Any]:
    """The manifest's ``score``: configuration (``config.skip_bad`` is what ``tamis select``
    reads), columns, status counts and the scoring statistics."""
    return {
        "config": {**asdict(cfg), "template": result.template},
        "columns": columns,
        "status_counts": dict(Counter(r["status"] for r in result.rows)),
        "truncated": sum(bool(r["truncated"]) for r in result.rows),
        **result.stats,
    }


def _add_rating(result, lm, data: Dataset, cache, batch_size: int, progress: bool) -> None:
    from tamis.judge import rating
    from tamis.score import progress_bar

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
    from tamis.lp import learning_percentage_scores, lp_columns

    values = learning_percentage_scores(
        lm, result.encoded, cache, cfg.train, out_dir / "lp", cfg.batch_size, progress
    )
    for row in result.rows:
        row.update(values.get(row["index"], dict.fromkeys(lp_columns(cfg.train.epochs))))
    result.columns.extend(lp_columns(cfg.train.epochs))


def select_job(out_dir: str | Path, sel: Selection) -> dict:
    """Select from a scored folder: writes ``selected.jsonl``, ``rejected.jsonl``, and updates the
    manifest with the selection and counts per reason."""
    start = time.perf_counter()
    out_dir = Path(out_dir)
    manifest = _load_manifest(out_dir)
    rows, columns = read_scores(out_dir / "scores.parquet")
    data = _reread_input(manifest)
    check_columns(sel, columns)  # before the embeddings diverse needs
    vectors = record_vectors(data, rows) if sel.method == "diverse" else None
    decisions = select(rows, sel, vectors)
    raws = _raw_by_index(data)
    kept, rejected = [], []
    for row, d in zip(rows, decisions, strict=True):
        if d.kept:
            kept.append(raws[d.index][1])
        else:
            where, raw = raws[d.index]
            rejected.append(rejected_item(row["id"], where, raw, d.reason, d.detail))
    if len(kept) + len(rejected) != manifest["input"]["records"]:
        raise RuntimeError("internal error: selection lost records; please report this")
    write_selection(out_dir, kept, rejected)
    manifest["selection"] = {
        **asdict(sel),
        "direction": sel.resolved_direction(),
        "drop_ifd_above": sel.ifd_limit(),
        "drop_junk_above": sel.junk_limit(columns),
        "wall_s": time.perf_counter() - start,
    }
    manifest["counts"] = {
        "input": len(rows),
        "selected": len(kept),
        "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(Counter(r["reason"] for r in rejected).items())),
        "junk_by_signal": junk_counts(rejected),
    }
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
    from tamis.embed import embed_texts, prompt_text

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


def _reread_input(manifest: dict) -> Dataset:
    return read_again(manifest["input"], manifest["score"]["config"]["skip_bad"])


def _raw_by_index(data: Dataset) -> dict[int, tuple[str, Any]]:
    raws = {r.index: (r.where, r.raw) for r in data.records}
    raws.update({b.index: (b.where, b.raw) for b in data.bad})
    return raws


CORE_PACKAGES = ("torch", "transformers", "numpy", "pyarrow", "gguf", "safetensors")


def versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    """Python's and the installed packages' versions for a manifest: the core ones and ``extra``."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for pkg in (*CORE_PACKAGES, *extra):
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out
