"""The target's own token count of each pool record: a budget at equal *trained* tokens.

A budget counted in the scorer's tokens (``prompt_tokens + response_tokens``, whole records) is
not what the target trains on: the target has another tokenizer and template, cuts a prompt to
fit its ``max_tokens`` and skips a record whose response alone does not fit. Arms of long records
then train on fewer tokens than their budget, arms of short ones on more (Superfiltering trained
4-25% more Gemma tokens than random on the Dolly pool, docs/results.md).

With ``budget_counts: target``, :func:`train_tokens` encodes every pool record once as ``tamis
train`` does (:func:`tamis.scorers.score.encode_dataset` with the target's tokenizer, template
and ``max_tokens``) and the experiment adds the count to the scores as ``train_tokens``, which
:func:`tamis.select.methods.record_tokens` prefers. A record the target skips counts 0: it costs
no training. Cost: the target's tokenizer on the pool, once (the model is loaded for it); the
counts are kept in ``data/train_tokens.jsonl`` so that a resumed experiment reuses them.
"""

from __future__ import annotations

from pathlib import Path

from tamis.base.files import read_jsonl, write_jsonl

FILE = "train_tokens.jsonl"


def train_tokens(job, pool_path: Path) -> dict[int, int]:
    """``{pool index: tokens the target trains on}`` under ``job``'s (a
    :class:`~tamis.engines.train_job.TrainJob`) model, template and ``max_tokens``; kept beside
    the pool (:data:`FILE`) and read from there when it exists."""
    path = Path(pool_path).parent / FILE
    if path.is_file():
        return {int(r["index"]): int(r["train_tokens"]) for r in read_jsonl(path)}
    from tamis.data.readers import read_dataset
    from tamis.model.loading import load_model
    from tamis.model.render import resolve_template
    from tamis.scorers.score import encode_dataset

    data = read_dataset(pool_path, job.format, True, fields=job.fields)
    tokenizer = load_model(job.model, "cpu").tokenizer
    template = resolve_template(job.template, tokenizer)
    encoded, rows = encode_dataset(data, tokenizer, template, job.max_tokens)
    counts = {i: len(encoded[i].input_ids) if i in encoded else 0 for i in sorted(rows)}
    write_jsonl(path, ({"index": i, "train_tokens": n} for i, n in counts.items()))
    return counts
