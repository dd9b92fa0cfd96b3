"""Batched generation with per-sample seeds: the same text whatever the batch or record order.

Sampling draws each token from ``softmax(logits / temperature)`` with a generator seeded for
each (prompt, sample number), so a row's draws depend only on its own seed and step: a sample
does not depend on which other prompts share its batch or on record order (beyond float rounding
of the logits, ~1e-6, which could flip a draw that falls exactly on a boundary). The seed is
taken from the request's cache key (model, prompt ids, settings, run seed, sample number).
``temperature == 0`` is greedy.

Results are cached (the token ids, in the score cache), so a killed run resumes without
generating again.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

GENERATE_VERSION = "1"


@dataclass(frozen=True)
class Generated:
    """``text`` decoded without special tokens; ``finished`` is False when ``max_new_tokens``
    cut it off before an end-of-sequence token."""

    text: str
    n_tokens: int
    finished: bool


@dataclass(frozen=True)
class Request:
    """One generation: the prompt's token ids and the sample number under the run's seed."""

    prompt_ids: tuple[int, ...]
    sample: int = 0


def stop_ids(lm) -> list[int]:
    """End-of-sequence ids: the tokenizer's and the model's generation config's."""
    ids = {lm.tokenizer.eos_token_id}
    eos = getattr(getattr(lm.model, "generation_config", None), "eos_token_id", None)
    ids.update(eos if isinstance(eos, list) else [eos])
    return sorted(i for i in ids if i is not None)


def request_key(lm, req: Request, temperature: float, max_new_tokens: int, seed: int) -> str:
    h = hashlib.sha256(
        f"gen|{GENERATE_VERSION}|{lm.sha256}|{temperature!r}|{max_new_tokens}|{seed}|"
        f"{req.sample if temperature > 0 else 0}|".encode()
    )
    h.update(np.asarray(req.prompt_ids, dtype=np.int64).tobytes())
    return h.hexdigest()


def generate(
    lm,
    requests: Sequence[Request],
    cache,
    temperature: float = 0.0,
    max_new_tokens: int = 128,
    seed: int = 0,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> list[Generated]:
    """One :class:`Generated` per request, in order. Cached by model, prompt, sample and settings;
    ``cache`` is a :class:`~tamis.model.cache.ScoreCache`."""
    stops = stop_ids(lm)
    keys = [request_key(lm, r, temperature, max_new_tokens, seed) for r in requests]
    ids: dict[str, list[int]] = {}
    for key in dict.fromkeys(keys):
        hit = cache.get(key, dtype=np.int64)
        if hit is not None:
            ids[key] = hit.tolist()
    todo = [i for i, k in enumerate(keys) if k not in ids]
    todo = list({keys[i]: i for i in reversed(todo)}.values())  # one per key, first occurrence
    # Longest prompts first, ties by key: batches of similar length, independent of input order.
    todo.sort(key=lambda i: (-len(requests[i].prompt_ids), keys[i]))
    with torch.inference_mode():
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            outs = _generate_batch(
                lm, [requests[i] for i in batch], [keys[i] for i in batch], temperature,
                max_new_tokens, stops,
            )  # fmt: skip
            for i, out in zip(batch, outs, strict=True):
                ids[keys[i]] = out
                cache.put(keys[i], np.asarray(out, dtype=np.int64), dtype=np.int64)
            if on_batch is not None:
                on_batch(len(batch))
    cache.flush()
    return [_decoded(lm.tokenizer, ids[k], stops) for k in keys]


def _decoded(tokenizer, ids: list[int], stops: list[int]) -> Generated:
    finished = bool(ids) and ids[-1] in stops
    text = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return Generated(text, len(ids), finished)


def _generate_batch(lm, reqs, keys, temperature, max_new_tokens, stops) -> list[list[int]]:
    from transformers import GenerationConfig, LogitsProcessorList

    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else stops[0]
    width = max(len(r.prompt_ids) for r in reqs)
    ids = torch.full((len(reqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(reqs), width), dtype=torch.long)
    for row, r in enumerate(reqs):  # left padding: every row's next token is at the end
        ids[row, width - len(r.prompt_ids) :] = torch.tensor(r.prompt_ids)
        mask[row, width - len(r.prompt_ids) :] = 1
    config = GenerationConfig(
        do_sample=False,
        max_new_tokens=max_new_tokens,
        eos_token_id=stops,
        pad_token_id=pad,
    )
    processors = LogitsProcessorList()
    if temperature > 0:
        processors.append(SeededSampler([int(k[:16], 16) for k in keys], temperature))
    out = lm.model.generate(
        input_ids=ids.to(lm.device),
        attention_mask=mask.to(lm.device),
        generation_config=config,
        logits_processor=processors,
    )
    result = []
    for row in out[:, width:].tolist():
        end = next((j for j, t in enumerate(row) if t in stops), None)
        result.append(row if end is None else row[: end + 1])
    return result


class SeededSampler:
    """A logits processor that samples each row's next token from ``softmax(scores / T)`` with
    that row's own generator, and leaves only that token possible, so greedy decoding keeps it.
    A row's draws depend only on its seed and step, never on the other rows of the batch."""

    def __init__(self, seeds: list[int], temperature: float):
        self.generators = [torch.Generator().manual_seed(s) for s in seeds]
        self.temperature = temperature

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        probs = torch.softmax(scores.float().cpu() / self.temperature, dim=-1)
        picks = [
            torch.multinomial(p, 1, generator=g)
            for p, g in zip(probs, self.generators, strict=True)
        ]
        out = torch.full_like(scores, -math.inf)
        rows = torch.arange(scores.shape[0], device=scores.device)
        out[rows, torch.cat(picks).to(scores.device)] = 0.0
        return out
