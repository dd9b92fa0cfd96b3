"""Render a record with a template and build ``input_ids`` and ``labels`` with the prompt masked.

This is the one place that decides which tokens a score (and later a fine-tuning step) is about:
scoring and training both call :func:`encode`, so a score describes exactly the tokens a
trainer learns from.

Templates:

- ``chat``: the model's own chat template. The prompt is the conversation rendered with the
  generation prompt; the response segment is what the template adds for the final assistant turn
  (for ChatML: the response and ``<|im_end|>``), trailing whitespace removed.
- ``alpaca``: the Stanford Alpaca template used by the papers (Alpaca, Cherry, Small2Large):
  ``Below is an instruction ... ### Response:`` followed by the response and the EOS token.
- ``auto``: ``chat`` when the tokenizer has a chat template, else ``alpaca``.

Unconditional pass (for ``ppl_uncond`` and IFD): the same response tokens after a minimal
prefix, so both passes score identical tokens. The prefix is the template's opening of an
assistant turn with no conversation (ChatML: ``<|im_start|>assistant\\n``) for ``chat``, and for
``alpaca`` the tokens the tokenizer puts before any text (its BOS), or EOS when it adds none.

Records longer than ``max_tokens``: the prompt is cut from the left and ``truncated`` is set;
when even the response does not fit beside one prompt token, :class:`TooLong` is raised and the
record is dropped with reason ``too_long``. Text that is certainly too long is never tokenized
whole (tokenizing 10 MB takes ~1.7 GB of memory): a response of more characters than
:func:`char_limit` is ``too_long`` at once, and a longer prompt is cut to its last
``char_limit`` characters before it is tokenized (still more tokens than fit, so the tokens kept
are the same).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from tamis.data.records import Record

TEMPLATES = ("auto", "chat", "alpaca")
IGNORE = -100

ALPACA_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_NO_INPUT = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:"
)


class TooLong(Exception):
    """The response alone does not fit in the context limit."""


@dataclass(frozen=True)
class Encoded:
    """Token ids of one rendered record; the first ``n_prompt`` are context (label -100)."""

    input_ids: tuple[int, ...]
    n_prompt: int
    truncated: bool = False

    @property
    def labels(self) -> list[int]:
        return [IGNORE] * self.n_prompt + list(self.input_ids[self.n_prompt :])

    @property
    def n_response(self) -> int:
        return len(self.input_ids) - self.n_prompt


def resolve_template(template: str, tokenizer: Any) -> str:
    """``auto`` becomes ``chat`` or ``alpaca``; an explicit ``chat`` needs a chat template."""
    from tamis.base.errors import TamisError

    if template not in TEMPLATES:
        raise TamisError(f"unknown template '{template}'; choose one of: {', '.join(TEMPLATES)}")
    has_chat = bool(getattr(tokenizer, "chat_template", None))
    if template == "auto":
        return "chat" if has_chat else "alpaca"
    if template == "chat" and not has_chat:
        raise TamisError("this model's tokenizer has no chat template; use --template alpaca")
    return template


def encode(record: Record, tokenizer: Any, template: str, max_tokens: int) -> Encoded:
    """Prompt and response ids of ``record`` under ``template`` (``chat`` or ``alpaca``)."""
    limit = char_limit(tokenizer, max_tokens)
    if len(record.response) > limit:
        raise TooLong(
            f"the response has {len(record.response)} characters, more than {max_tokens} "
            "tokens can hold"
        )
    if template == "chat":
        prompt_ids, response_ids = _chat_parts(record, tokenizer, limit)
    else:
        prompt_ids, response_ids = _alpaca_parts(record, tokenizer, limit)
    return _fit(prompt_ids, response_ids, max_tokens)


def char_limit(tokenizer: Any, max_tokens: int) -> int:
    """A text of more characters than this has more than ``max_tokens`` tokens.

    No token covers more characters than the longest one in the vocabulary, so n characters
    make at least n / longest tokens; the factor 2 is a margin for normalizers that drop
    characters. SmolLM2 (longest token 81 characters), 2048 tokens: 331,776 characters.
    """
    return 2 * max_tokens * _longest_token(tokenizer)


@functools.lru_cache(maxsize=8)
def _longest_token(tokenizer: Any) -> int:
    return max((len(t) for t in tokenizer.get_vocab()), default=1)


def encode_unconditional(encoded: Encoded, tokenizer: Any, template: str) -> Encoded:
    """The response tokens of ``encoded`` after the minimal prefix (see the module docstring)."""
    prefix = _uncond_prefix(tokenizer, template)
    return Encoded(prefix + encoded.input_ids[encoded.n_prompt :], len(prefix))


def _fit(prompt_ids: list[int], response_ids: list[int], max_tokens: int) -> Encoded:
    if len(response_ids) + 1 > max_tokens:
        raise TooLong(f"the response has {len(response_ids)} tokens; the limit is {max_tokens}")
    room = max_tokens - len(response_ids)
    truncated = len(prompt_ids) > room
    if truncated:
        prompt_ids = prompt_ids[len(prompt_ids) - room :]
    return Encoded(tuple(prompt_ids) + tuple(response_ids), len(prompt_ids), truncated)


def _messages(record: Record) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in record.prompt]


def _chat_parts(record: Record, tokenizer: Any, limit: int) -> tuple[list[int], list[int]]:
    messages = _messages(record)
    prompt_text = tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    full_text = tokenizer.apply_chat_template(
        [*messages, {"role": "assistant", "content": record.response}], tokenize=False
    )
    if full_text.startswith(prompt_text):
        response_text = full_text[len(prompt_text) :].rstrip()
    else:  # templates that rewrite earlier turns: fall back to response + end of sequence
        response_text = record.response + (tokenizer.eos_token or "")
    return _ids(tokenizer, prompt_text[-limit:]), _ids(tokenizer, response_text)


def _alpaca_parts(record: Record, tokenizer: Any, limit: int) -> tuple[list[int], list[int]]:
    instruction, extra = record.alpaca_fields or (_flatten(record), "")
    if extra.strip():
        prompt_text = ALPACA_INPUT.format(instruction=instruction, input=extra)
    else:
        prompt_text = ALPACA_NO_INPUT.format(instruction=instruction)
    prompt_ids = tokenizer(prompt_text[-limit:], add_special_tokens=True)["input_ids"]
    response_ids = _ids(tokenizer, record.response)
    if tokenizer.eos_token_id is not None:
        response_ids.append(tokenizer.eos_token_id)
    return list(prompt_ids), response_ids


def _flatten(record: Record) -> str:
    # A chat record under the Alpaca template: a single user turn is the instruction as is;
    # longer conversations are written out turn by turn.
    if len(record.prompt) == 1:
        return record.prompt[0].content
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in record.prompt)


@functools.lru_cache(maxsize=8)
def _uncond_prefix(tokenizer: Any, template: str) -> tuple[int, ...]:
    if template == "chat":
        header = _assistant_header(tokenizer)
        if header:
            return tuple(_ids(tokenizer, header))
    bos = tokenizer("", add_special_tokens=True)["input_ids"]
    return tuple(bos) if bos else (tokenizer.eos_token_id,)


def _assistant_header(tokenizer: Any) -> str:
    """What the chat template adds to open an assistant turn (ChatML: ``<|im_start|>assistant\\n``):
    one user turn rendered with the generation prompt, minus the same turn rendered without it."""
    turn = [{"role": "user", "content": "x"}]
    with_header = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=True)
    without = tokenizer.apply_chat_template(turn, tokenize=False, add_generation_prompt=False)
    return with_header[len(without) :] if with_header.startswith(without) else ""


def _ids(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def default_system_prompt(tokenizer) -> str | None:
    """The system prompt a chat template adds by itself when a conversation has none (SmolLM2's
    "You are a helpful AI assistant named SmolLM, trained by Hugging Face"), else None: found by
    rendering a conversation with a marked system message and one without, and reading what the
    second has where the first has the mark."""
    if getattr(tokenizer, "chat_template", None) is None:
        return None
    mark, user = "\x02SYSTEM\x03", [{"role": "user", "content": "\x02USER\x03"}]
    try:
        marked = tokenizer.apply_chat_template(
            [{"role": "system", "content": mark}, *user], tokenize=False
        )
        plain = tokenizer.apply_chat_template(user, tokenize=False)
    except Exception:  # a template that refuses system messages adds none of its own
        return None
    before, _, after = marked.partition(mark)
    closing = after.split("\x02USER\x03", 1)[0]  # from the system text to the user's
    if not after or not closing or not plain.startswith(before):
        return None
    rest = plain[len(before) :]  # the plain rendering from where the system text would be
    return rest.split(closing, 1)[0].strip() or None if closing in rest else None
