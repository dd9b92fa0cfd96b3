"""Learning percentage scores: fine-tune the scorer model on the data and watch each record's loss.

Mekala, Nguyen & Shang 2024: measure every record's response perplexity before training (``P0``)
and after each of ``n`` epochs (``P1..Pn``); ``lp = (P0 - P1) / (P0 - Pn)`` is the share of the drop
that happens in the first epoch, ``lp_approx = (P0 - P1) / P0``. Low = learned late = hard; the
paper keeps the hardest records (lowest LP) and finds they train a 13B model as well as the full
set when picked by a 350M one.

The model is trained on a copy of the weights (the loaded model is left untouched), with
:func:`tamis.model.finetune.train_by_epoch`. Every ``P_e`` goes through the score cache under a
model identity that covers the base weights, the hyper-parameters, the epoch and the exact training
sequences, so a killed run resumes from its last finished epoch and recomputes nothing scored.
"""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path
from typing import Any

from tamis.base.maths import learning_percentage, learning_percentage_approx, perplexity
from tamis.model.cache import ScoreCache, cache_key
from tamis.model.checkpoints import clear_checkpoints
from tamis.model.finetune import TrainConfig, prepare_model, train_by_epoch
from tamis.model.loading import LoadedModel
from tamis.model.render import Encoded
from tamis.scorers.score import add_sequence, cached_nlls


def lp_columns(epochs: int) -> list[str]:
    """The columns written: ``p0 .. p{epochs}``, ``lp``, ``lp_approx``."""
    return [f"p{e}" for e in range(epochs + 1)] + ["lp", "lp_approx"]


def learning_percentage_scores(
    lm: LoadedModel,
    encoded: dict[int, Encoded],
    cache: ScoreCache,
    cfg: TrainConfig,
    work_dir: Path,
    batch_size: int = 8,
    progress: bool = True,
    keep_checkpoints: bool = False,
    stats: dict[str, int] | None = None,
) -> dict[int, dict[str, float]]:
    """``{input index: {p0.., lp, lp_approx}}`` for every encoded record (scored and trained on).
    ``stats``, when given, gets the work done: ``epochs`` trained in this call, and the
    ``sequences`` the P0..Pn passes read (``computed``, ``from_cache``)."""
    stats = stats if stats is not None else {}
    stats.update(epochs_trained=0, sequences=0, computed=0, from_cache=0)
    cfg.check()
    order = sorted(encoded)
    data_digest = hashlib.sha256(
        "".join(cache_key("", encoded[i]) for i in order).encode()
    ).hexdigest()[:16]
    run_dir = Path(work_dir) / f"lp-{cfg.digest()}-{data_digest}"
    perplexities: dict[int, dict[int, float]] = {}

    def epoch_sha(epoch: int) -> str:
        # P0 is plain ppl under the base model: shared with `--scorer ppl` through the cache.
        return lm.sha256 if epoch == 0 else f"{lm.sha256}:lp:{cfg.digest()}:{data_digest}:e{epoch}"

    def score_epoch(epoch: int, model) -> None:
        scorer = LoadedModel(lm.name, lm.source, epoch_sha(epoch), model, lm.tokenizer, lm.device)
        sequences: dict[str, Encoded] = {}
        keys = {i: add_sequence(sequences, scorer.sha256, encoded[i]) for i in order}
        nlls, done = cached_nlls(scorer, sequences, cache, batch_size, progress, desc=f"P{epoch}")
        perplexities[epoch] = {i: perplexity(nlls[keys[i]]) for i in order}
        for key in ("sequences", "computed", "from_cache"):
            stats[key] += done[key]
        stats["epochs_trained"] += epoch > 0

    score_epoch(0, lm.model)
    # Epochs an earlier run finished are complete in the cache; only the rest need training.
    for epoch in range(1, cfg.epochs + 1):
        hits = {i: cache.get(cache_key(epoch_sha(epoch), encoded[i])) for i in order}
        if all(v is not None for v in hits.values()):
            perplexities[epoch] = {i: perplexity(v) for i, v in hits.items()}
            stats["sequences"] += len(hits)
            stats["from_cache"] += len(hits)
    if any(e not in perplexities for e in range(1, cfg.epochs + 1)):
        model = prepare_model(copy.deepcopy(lm.model), cfg)
        train_by_epoch(
            model, lm.tokenizer, [encoded[i] for i in order], cfg, run_dir, score_epoch, progress
        )
    missing = [e for e in range(cfg.epochs + 1) if e not in perplexities]
    if missing:
        raise RuntimeError(f"internal error: no perplexities for epochs {missing}")
    if not keep_checkpoints:
        clear_checkpoints(run_dir)
    return _columns(perplexities, order, cfg.epochs)


def _columns(perplexities: dict[int, dict[int, float]], order: list[int], epochs: int):
    out: dict[int, dict[str, Any]] = {}
    for i in order:
        p = [perplexities[e][i] for e in range(epochs + 1)]
        out[i] = {f"p{e}": p[e] for e in range(epochs + 1)}
        out[i]["lp"] = learning_percentage(p[0], p[1], p[-1])
        out[i]["lp_approx"] = learning_percentage_approx(p[0], p[1])
    return out
