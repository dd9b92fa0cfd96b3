"""The one batched runner: per-token NLLs of response tokens for many encoded records.

Records are sorted by length (longest first, ties by position) and padded on the right within a
batch, so padding is small and a score does not depend on batch size or input order (beyond
float rounding, ~1e-6). The output head is applied only at positions whose next token is a
response token: for SmolLM2-135M the 49k-wide head is a third of the compute, and most positions
are prompt.

Records that open with the same tokens (a template's preamble, a system prompt) share them: the
prefix's keys and values are computed once per group (:mod:`tamis.model.prefixes`) and each batch of
the group runs only the rest of its tokens. The NLLs are those of the whole sequences, to float
rounding.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from tamis.model.prefixes import shared_prefixes
from tamis.model.render import IGNORE, Encoded

# Rows of hidden states sent through the output head at once; bounds the logits tensor
# (8192 x 262k vocabulary x 4 bytes = 8.6 GB would be too much for Gemma, so it is chunked).
HEAD_CHUNK = 1024
# Logits (rows x vocabulary) of one chunk of the training loss: about 3.8 GB at 14 bytes each
# (bfloat16 and float32 logits, the saved softmax, its gradient). Smaller chunks cost a second
# pass through the head for more batches; see response_loss.
LOSS_CHUNK_ELEMENTS = 2**28


def length_batches(encoded: Sequence[Encoded], batch_size: int) -> list[list[int]]:
    """Indices of ``encoded`` grouped into batches of similar length, longest first."""
    order = sorted(range(len(encoded)), key=lambda i: (-len(encoded[i].input_ids), i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def token_nlls(
    lm,
    encoded: Sequence[Encoded],
    batch_size: int = 8,
    on_batch: Callable[[int, int, int], None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(i, nll)`` for every ``encoded[i]``: float32 NLLs (nats) of its response tokens.

    ``lm`` is a :class:`~tamis.model.loading.LoadedModel`. ``on_batch(records, tokens, run)`` is
    called after each batch (for progress bars and speed): ``tokens`` counts the records' tokens, a
    shared prefix in every record that has it; ``run`` counts the tokens the model ran, a shared
    prefix once, in the first batch of its group. Results come group by group of shared prefix,
    batch by batch, in length order.
    """
    pad_id = lm.tokenizer.pad_token_id
    if pad_id is None:
        pad_id = lm.tokenizer.eos_token_id or 0
    with torch.inference_mode():
        for prefix, members in prefix_groups(lm.model, encoded):
            past = _prefix_cache(lm, encoded[members[0]].input_ids[:prefix]) if prefix else None
            run = prefix  # the prefix pass, counted with the group's first batch
            for positions in length_batches([encoded[i] for i in members], batch_size):
                batch = [members[j] for j in positions]
                items = [encoded[i] for i in batch]
                nlls = _batch_nll(lm, items, pad_id, prefix, past)
                yield from zip(batch, nlls, strict=True)
                tokens = sum(len(e.input_ids) for e in items)
                if on_batch is not None:
                    on_batch(len(batch), tokens, run + tokens - prefix * len(items))
                run = 0


def prefix_groups(model, encoded: Sequence[Encoded]) -> list[tuple[int, list[int]]]:
    """:func:`~tamis.model.prefixes.shared_prefixes` of ``encoded`` for ``model``. A prefix ends
    before the last prompt token, whose hidden state predicts the first response token, and, for a
    model with sliding-window attention (Gemma 3), within the window, which its cache keeps
    whole. A prompt-tuned model reads its soft prompt first, so nothing is shared."""
    if soft_prompt_length(model):
        return [(0, list(range(len(encoded))))]
    window = getattr(model.config, "sliding_window", None) or 0
    limits = [max(0, e.n_prompt - 1) for e in encoded]
    if window:
        limits = [min(n, window - 1) for n in limits]
    return shared_prefixes([e.input_ids for e in encoded], limits)


def _prefix_cache(lm, prefix: Sequence[int]):
    ids = torch.tensor([list(prefix)], dtype=torch.long, device=lm.device)
    out = lm.model.get_decoder()(input_ids=ids, use_cache=True)
    return out[CACHE]


def _cache_name() -> str:
    """The keyword and output field of a model's key/value cache: ``cache`` since transformers
    renamed ``past_key_values`` (5.x, which warns on the old name), ``past_key_values`` before."""
    from transformers.modeling_outputs import BaseModelOutputWithPast

    fields = getattr(BaseModelOutputWithPast, "__dataclass_fields__", {})
    return "cache" if "cache" in fields else "past_key_values"


CACHE = _cache_name()


def _batch_nll(lm, items: list[Encoded], pad_id: int, prefix: int, past) -> list[np.ndarray]:
    """NLLs of ``items``, whose first ``prefix`` tokens are in ``past`` (keys and values) when
    ``prefix`` is not 0; only the tokens after the prefix are run."""
    width = max(len(e.input_ids) for e in items) - prefix
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    labels = torch.full((len(items), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, e in enumerate(items):
        n = len(e.input_ids) - prefix
        ids[row, :n] = torch.tensor(e.input_ids[prefix:])
        labels[row, e.n_prompt - prefix : n] = ids[row, e.n_prompt - prefix : n]
        mask[row, :n] = 1
    ids, labels, mask = ids.to(lm.device), labels.to(lm.device), mask.to(lm.device)
    rows, targets, keep = _response_rows(lm.model, ids, labels, mask, past)
    out = torch.empty(targets.shape[0], dtype=torch.float32, device=rows.device)
    for start in range(0, rows.shape[0], HEAD_CHUNK):
        logits = _head(lm.model, rows[start : start + HEAD_CHUNK]).float()
        out[start : start + HEAD_CHUNK] = F.cross_entropy(
            logits, targets[start : start + HEAD_CHUNK], reduction="none"
        )
    counts = keep.sum(dim=1).tolist()
    return [a.cpu().numpy() for a in torch.split(out, counts)]


def response_loss(model, ids, labels, mask) -> tuple[torch.Tensor, int]:
    """The summed cross-entropy (nats) of the tokens ``labels`` marks (``IGNORE`` elsewhere) and
    their count, with gradients: the training loss, with the output head applied only at the
    positions whose next token is labelled, as in scoring. The model's own forward applies it at
    every position, which for Gemma 3's 262k-wide head is most of the compute.

    A batch with more response tokens than :func:`loss_chunk_rows` goes through the head in
    chunks whose logits are recomputed in the backward pass instead of kept (activation
    checkpointing): the logits and their softmax, about 14 bytes per row and vocabulary entry,
    would otherwise be the largest allocation of a training step, and for Gemma's 262k-wide head
    made a long batch run out of 24 GB (``benchmarks/train_memory.py``)."""
    rows, targets, _ = _response_rows(model, ids, labels, mask)
    chunk = loss_chunk_rows(model)
    if rows.shape[0] <= chunk:
        return _head_loss(model, rows, targets), int(targets.shape[0])
    from torch.utils.checkpoint import checkpoint

    total = sum(
        checkpoint(
            _head_loss, model, rows[s : s + chunk], targets[s : s + chunk], use_reentrant=False
        )
        for s in range(0, rows.shape[0], chunk)
    )
    return total, int(targets.shape[0])


def loss_chunk_rows(model) -> int:
    """Response rows sent through the output head at once by :func:`response_loss`:
    :data:`LOSS_CHUNK_ELEMENTS` logits (1,024 rows for Gemma 3, 5,461 for SmolLM2)."""
    return max(1, LOSS_CHUNK_ELEMENTS // model.get_output_embeddings().weight.shape[0])


def _head_loss(model, rows, targets):
    return F.cross_entropy(_head(model, rows).float(), targets, reduction="sum")


def _response_rows(model, ids, labels, mask, past=None):
    """The last hidden states at the positions whose next token is labelled, those tokens, and
    the mask of the positions kept (position t predicts token t+1)."""
    hidden = _hidden_states(model, ids, mask, past)
    target = labels[:, 1:]
    keep = target != IGNORE
    return hidden[:, :-1][keep], target[keep], keep


def _hidden_states(model, ids, mask, past=None):
    """Last hidden states at every position of ``ids``, after the prefix whose keys and values
    ``past`` holds for one sequence (None: no prefix). A prompt-tuned model (PEFT) reads its
    soft prompt first, as its own forward does; the soft prompt's positions are dropped."""
    n, n_soft = ids.shape[0], 0
    if past is not None:
        cache = copy.deepcopy(past)  # the forward appends to it
        cache.batch_repeat_interleave(n)
        seen = torch.ones((n, cache.get_seq_length()), dtype=mask.dtype, device=mask.device)
        inputs = {"input_ids": ids, CACHE: cache, "use_cache": True}
    else:
        n_soft = soft_prompt_length(model)
        seen = torch.ones((n, n_soft), dtype=mask.dtype, device=mask.device)
        inputs = {"input_ids": ids, "use_cache": False}
        if n_soft:
            embeds = model.get_input_embeddings()(ids)
            soft = model.get_prompt(batch_size=n).to(embeds.dtype)
            inputs = {"inputs_embeds": torch.cat([soft, embeds], 1), "use_cache": False}
    out = model.get_decoder()(attention_mask=torch.cat([seen, mask], 1), **inputs)
    hidden = out.last_hidden_state if hasattr(out, "last_hidden_state") else out[0]
    return hidden[:, n_soft:]


def soft_prompt_length(model) -> int:
    """Virtual tokens of a PEFT prompt-tuned model; 0 for any other model."""
    config = getattr(model, "active_peft_config", None)
    if getattr(config, "peft_type", None) != "PROMPT_TUNING":
        return 0
    return int(config.num_virtual_tokens)


def _head(model, rows):
    logits = model.get_output_embeddings()(rows)
    # Gemma 2 style soft-capping of the final logits; None for most models (SmolLM2, Gemma 3).
    cap = getattr(model.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return logits
