"""The scoring step: records in, one row of score columns per input record out.

Encodes every record once, looks each sequence up in the cache, runs the batched runner on the
rest, and computes every requested scorer from the per-token NLLs. Records that cannot be scored
keep their row with a ``status`` naming why (``too_long`` or the bad-input reason), so the rows
always match the input one to one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tamis.data.readers import Dataset
from tamis.model.cache import ScoreCache, cache_key
from tamis.model.render import Encoded, TooLong, encode, encode_unconditional, resolve_template
from tamis.scorers import Scorer, TextScorer, TokenNLL

DEFAULT_MAX_TOKENS = 2048
STATUS_OK = "ok"
# Records encoded and scored at a time: token ids and NLLs are held for one chunk only, so memory
# does not grow with the dataset; large enough that length-sorted batches still pad little.
CHUNK_RECORDS = 4096
# Counts and timings of a scoring step that add up over chunks, shards and models: ``tokens`` are
# the records' tokens, ``tokens_run`` those the model ran (a shared prefix once per group).
SUMMED_STATS = ("sequences", "from_cache", "computed", "tokens", "tokens_run", "forward_s")


@dataclass
class ScoreResult:
    """``rows`` are in input order: ``index``, ``id``, ``status``, ``detail``, ``truncated`` and
    one value per score column (None where the record was not scored)."""

    rows: list[dict[str, Any]]
    columns: list[str]
    template: str
    stats: dict[str, Any] = field(default_factory=dict)
    # {input index: encoding} of the scored records, for steps that train on them (LP)
    encoded: dict[int, Encoded] = field(default_factory=dict, repr=False)


def score_dataset(
    data: Dataset,
    lm,
    scorers: list[Scorer | TextScorer],
    cache: ScoreCache,
    template: str = "auto",
    max_tokens: int = DEFAULT_MAX_TOKENS,
    batch_size: int = 8,
    progress: bool = True,
    keep_encoded: bool = False,
) -> ScoreResult:
    """Score every record of ``data`` with ``lm`` (a :class:`~tamis.model.loading.LoadedModel`).

    Records are encoded and scored :data:`CHUNK_RECORDS` at a time, so token ids and per-token
    NLLs never pile up for the whole dataset. ``keep_encoded`` keeps every record's encoding in
    ``result.encoded`` for steps that need them afterwards (LP training, generation).
    """
    start = time.perf_counter()
    template = resolve_template(template, lm.tokenizer)
    text_scorers = [s for s in scorers if isinstance(s, TextScorer)]
    scorers = [s for s in scorers if not isinstance(s, TextScorer)]
    passes = sorted(set().union(*(s.passes for s in scorers)))
    columns = [c for s in [*scorers, *text_scorers] for c in s.columns]
    by_index, kept = _bad_rows(data), {}
    stats = dict.fromkeys(SUMMED_STATS, 0)
    bar = progress_bar(len(data.records) * len(passes), progress and bool(passes), "scoring")
    try:
        for lo in range(0, len(data.records), CHUNK_RECORDS):
            chunk = data.records[lo : lo + CHUNK_RECORDS]
            encoded = _encode_records(chunk, lm.tokenizer, template, max_tokens, by_index)
            if scorers:  # model scorers; ``tokens`` needs no forward pass but still a row
                target = bar.n + len(chunk) * len(passes)
                done = _score_chunk(
                    lm, encoded, template, passes, scorers, cache, batch_size, bar, stats
                )
                for index, values in done.items():
                    by_index[index].update(values)
                bar.update(target - bar.n)  # cache hits, duplicates and too-long records
            if keep_encoded:
                kept.update(encoded)
    finally:
        bar.close()
    for scorer in text_scorers:
        for column, values in scorer.compute_all(data.records).items():
            for rec, value in zip(data.records, values, strict=True):
                by_index[rec.index][column] = value
    rows = [by_index[i] for i in sorted(by_index)]
    for row in rows:
        for c in columns:
            row.setdefault(c, None)
    if stats["computed"]:
        stats["tokens_per_s"] = stats["tokens"] / max(stats["forward_s"], 1e-9)
    stats["wall_s"] = time.perf_counter() - start
    return ScoreResult(rows, columns, template, stats, kept)


def add_sequence(sequences: dict[str, Encoded], sha: str, e: Encoded) -> str:
    """Register ``e`` under its cache key for model ``sha``; return the key."""
    key = cache_key(sha, e)
    sequences.setdefault(key, e)
    return key


def encode_dataset(data: Dataset, tokenizer, template: str, max_tokens: int):
    """``({input index: Encoded}, {input index: row})``: every record encoded once; rows start
    with ``index``, ``id``, ``status`` (``ok``, ``too_long`` or the bad-input reason), ``detail``
    and ``truncated``. ``template`` must be resolved (``chat`` or ``alpaca``)."""
    rows = _bad_rows(data)
    return _encode_records(data.records, tokenizer, template, max_tokens, rows), rows


def _bad_rows(data: Dataset) -> dict[int, dict[str, Any]]:
    # Keyed by input position: a caller may have filtered data.records, so positions can have gaps.
    rows: dict[int, dict[str, Any]] = {}
    for bad in data.bad:
        rid = bad.raw.get("id") if isinstance(bad.raw, dict) else None
        rows[bad.index] = _row(bad.index, None if rid is None else str(rid), bad.reason, bad.detail)
    return rows


def _encode_records(records, tokenizer, template: str, max_tokens: int, rows: dict) -> dict:
    """Encode ``records``; add each one's row to ``rows``; return ``{index: Encoded}``."""
    encoded: dict[int, Encoded] = {}
    for rec in records:
        try:
            e = encode(rec, tokenizer, template, max_tokens)
        except TooLong as too_long:
            rows[rec.index] = _row(rec.index, rec.id, "too_long", f"{rec.where}: {too_long}")
            continue
        rows[rec.index] = _row(rec.index, rec.id, STATUS_OK, "", e.truncated)
        encoded[rec.index] = e
    return encoded


def _score_chunk(lm, encoded, template, passes, scorers, cache, batch_size, bar, stats) -> dict:
    """``{index: score columns}`` for the encoded records of one chunk; adds to ``stats``."""
    sequences: dict[str, Encoded] = {}  # cache key -> sequence to score; duplicates scored once
    keys: dict[int, dict[str, str]] = {}
    for index, cond in encoded.items():
        keys[index] = {}
        if "conditional" in passes:
            keys[index]["conditional"] = add_sequence(sequences, lm.sha256, cond)
        if "unconditional" in passes:
            uncond = encode_unconditional(cond, lm.tokenizer, template)
            keys[index]["unconditional"] = add_sequence(sequences, lm.sha256, uncond)
    nlls, chunk_stats = cached_nlls(lm, sequences, cache, batch_size, True, bar=bar)
    for k in SUMMED_STATS:
        stats[k] += chunk_stats.get(k, 0)
    out = {}
    for index, cond in encoded.items():
        t = TokenNLL(
            nlls.get(keys[index].get("conditional")),
            nlls.get(keys[index].get("unconditional")),
            cond.n_prompt,
            cond.n_response,
        )
        out[index] = {k: v for scorer in scorers for k, v in scorer.compute(t).items()}
    return out


def _row(index: int, rid: str | None, status: str, detail: str, truncated: bool = False) -> dict:
    return {"index": index, "id": rid, "status": status, "detail": detail, "truncated": truncated}


def cached_nlls(
    lm,
    sequences: dict[str, Encoded],
    cache: ScoreCache,
    batch_size: int,
    progress: bool,
    desc: str = "scoring",
    bar=None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Per-token NLLs for every ``{cache key: sequence}``: from the cache, else from the runner
    (written to the cache as batches finish). Returns the NLLs and counts/timings. A caller's
    ``bar`` advances by one per computed sequence and is left open; without one, a bar is drawn
    for this call."""
    from tamis.model.runner import token_nlls

    nlls: dict[str, np.ndarray] = {}
    for key in sequences:
        hit = cache.get(key)
        if hit is not None:
            nlls[key] = hit
    todo = [k for k in sequences if k not in nlls]
    stats = {
        "sequences": len(sequences),
        "from_cache": len(nlls),
        "computed": len(todo),
        "tokens": 0,
        "tokens_run": 0,
    }
    if not todo:
        return nlls, stats
    own_bar = bar is None
    if own_bar:
        bar = progress_bar(len(todo), progress, desc)
    t0 = time.perf_counter()

    def on_batch(n: int, tokens: int, run: int) -> None:
        stats["tokens"] += tokens
        stats["tokens_run"] += run
        bar.update(n)
        bar.set_postfix_str(
            f"{stats['tokens'] / max(time.perf_counter() - t0, 1e-9):.0f} tok/s", refresh=False
        )

    work = [sequences[k] for k in todo]
    try:
        for i, nll in token_nlls(lm, work, batch_size, on_batch):
            cache.put(todo[i], nll)
            nlls[todo[i]] = nll
    finally:
        cache.flush()
        if own_bar:
            bar.close()
    elapsed = time.perf_counter() - t0
    stats["forward_s"] = elapsed
    stats["tokens_per_s"] = stats["tokens"] / elapsed if elapsed > 0 else None
    return nlls, stats


def progress_bar(total: int, enabled: bool, desc: str):
    """The progress bar every step draws (tqdm, records as ``seq``)."""
    from tqdm.auto import tqdm

    return tqdm(
        total=total,
        desc=desc,
        unit="seq",
        disable=not enabled,
        mininterval=1.0,
        dynamic_ncols=True,
    )
