"""The target's own token count of each pool record: a budget at equal *trained* tokens.

A budget counted in the scorer's tokens (``prompt_tokens + response_tokens``, whole records) is
not what the target trains on: the target has another tokenizer and template, cuts a prompt to
fit its ``max_tokens`` and skips a record whose response alone does not fit. Arms of long records
then train on fewer tokens than their budget, arms of short ones on more (Superfiltering trained
4-25% more Gemma tokens than random on the Dolly pool, docs/results.md).

With ``budget_counts: target``, :func:`train_tokens` encodes every pool record once as ``tamis
train`` does (:func:`tamis.scorers.score.encode_dataset` with the target's tokenizer, template
and ``max_tokens``), and the experiment adds the count (for one epoch) to the rows it selects
from as ``train_tokens``, which :func:`tamis.select.methods.record_tokens` prefers. A record the
target skips (too long for ``max_tokens``, or bad) would train nothing: it is left out of every
selection but ``full``. Cost: the target's tokenizer on the pool, once (no weights are loaded
for it); the counts are kept in ``data/train_tokens.json`` with the settings and the pool's
sha256 they were counted for, so that a resumed experiment reuses them while those match.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tamis.base.files import file_sha256, write_json

if TYPE_CHECKING:
    from tamis.engines.train_job import TrainJob

FILE = "train_tokens.json"


def train_tokens(job: TrainJob, pool_path: Path) -> dict[int, int]:
    """``{pool index: tokens the target trains on}`` under ``job``'s model, template,
    ``max_tokens``, format and fields; kept beside the pool (:data:`FILE`) with those settings
    and the pool's sha256, and read from there while they all match (else counted again)."""
    pool_path = Path(pool_path)
    path = pool_path.parent / FILE
    key = {
        "model": job.model,
        "template": job.template,
        "max_tokens": job.max_tokens,
        "format": job.format,
        "fields": [list(f) for f in job.fields],
        "pool_sha256": file_sha256(pool_path),
    }
    if path.is_file():
        kept = json.loads(path.read_text(encoding="utf-8"))
        if kept.get("key") == key:
            return {int(i): int(n) for i, n in kept["counts"]}
    from tamis.data.readers import read_dataset
    from tamis.model.loading import load_tokenizer
    from tamis.model.render import resolve_template
    from tamis.scorers.score import encode_dataset

    data = read_dataset(pool_path, job.format, True, fields=job.fields)
    tokenizer = load_tokenizer(job.model)
    template = resolve_template(job.template, tokenizer)
    encoded, rows = encode_dataset(data, tokenizer, template, job.max_tokens)
    counts = {i: len(encoded[i].input_ids) if i in encoded else 0 for i in sorted(rows)}
    write_json(path, {"key": key, "counts": [[i, n] for i, n in counts.items()]})
    return counts
