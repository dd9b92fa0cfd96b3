"""The model as a judge: fixed prompts, answers read from next-token probabilities, never parsed.

Each question is asked as one user turn (the model's chat template with the generation prompt;
models without one get the text followed by ``\\nAnswer:``), and the probabilities the model puts
on the first token of each allowed answer are read from its logits:

- :data:`REFLECTION_PROMPT`: is the response correct and helpful? ``yes`` against ``no``
  (self-reflection certainty, BSDetector; Chen & Mueller 2024);
- :data:`RATING_PROMPT`: accuracy and helpfulness from 1 to 5 (AlpaGasus-style rating); the
  score is the expected rating under the probabilities of ``1`` .. ``5``;
- :data:`COMPARE_PROMPT`: which of two responses is better, ``A`` or ``B``; asked in both orders
  so position bias cancels.

An answer's probability is the sum over its spellings (``yes``, ``Yes``, `` yes``, `` Yes``) of
the probability of their first token; a first token shared by two answers (a bare space) is not
counted for either. Probabilities are renormalised over the answers, and the mass the model put
on them at all is kept (``*_mass``): a low mass means the model did not follow the format.

Long texts are cut to :data:`FIELD_TOKENS` tokens per field (marked ``[...]``) so a prompt fits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from tamis.data.records import Record

JUDGE_VERSION = "1"
FIELD_TOKENS = 384

REFLECTION_PROMPT = (
    "Here is an instruction and a response to it.\n\n"
    "### Instruction:\n{prompt}\n\n### Response:\n{response}\n\n"
    "Is the response correct and helpful for the instruction? Answer yes or no."
)
RATING_PROMPT = (
    "Here is an instruction and a response to it.\n\n"
    "### Instruction:\n{prompt}\n\n### Response:\n{response}\n\n"
    "Rate the accuracy and helpfulness of the response on a scale from 1 (poor) to 5 "
    "(excellent). Answer with a single digit."
)
COMPARE_PROMPT = (
    "Here is an instruction and two responses to it.\n\n"
    "### Instruction:\n{prompt}\n\n### Response A:\n{a}\n\n### Response B:\n{b}\n\n"
    "Which response is more correct and helpful? Answer A or B."
)

YES_NO = {"yes": ("yes", "Yes", " yes", " Yes"), "no": ("no", "No", " no", " No")}
A_B = {"A": ("A", " A"), "B": ("B", " B")}
DIGITS = {str(d): (str(d), f" {d}") for d in range(1, 6)}


@dataclass(frozen=True)
class Answers:
    """The token ids read for each answer."""

    names: tuple[str, ...]
    token_ids: tuple[tuple[int, ...], ...]

    @classmethod
    def of(cls, tokenizer, spellings: dict[str, tuple[str, ...]]) -> Answers:
        firsts = {
            name: {tokenizer(s, add_special_tokens=False)["input_ids"][0] for s in forms}
            for name, forms in spellings.items()
        }
        shared = {
            t for n, ids in firsts.items() for t in ids for m in firsts if m != n and t in firsts[m]
        }
        ids = tuple(tuple(sorted(firsts[n] - shared)) for n in spellings)
        return cls(tuple(spellings), ids)

    @property
    def flat(self) -> list[int]:
        return [t for ids in self.token_ids for t in ids]


def record_prompt_text(record: Record) -> str:
    """The record's prompt as one text: Alpaca instruction and input, or the turns written out."""
    if record.alpaca_fields is not None:
        instruction, extra = record.alpaca_fields
        return f"{instruction}\n\n{extra}".strip() if extra.strip() else instruction
    if len(record.prompt) == 1:
        return record.prompt[0].content
    return "\n\n".join(f"{m.role.capitalize()}: {m.content}" for m in record.prompt)


def clip(tokenizer, text: str, n: int = FIELD_TOKENS) -> str:
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return text if len(ids) <= n else tokenizer.decode(ids[:n]) + " [...]"


def question_ids(tokenizer, text: str) -> tuple[int, ...]:
    """``text`` as a user turn ready for the answer's first token."""
    if getattr(tokenizer, "chat_template", None):
        rendered = tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        return tuple(tokenizer(rendered, add_special_tokens=False)["input_ids"])
    return tuple(tokenizer(text + "\nAnswer:", add_special_tokens=True)["input_ids"])


def answer_probs(
    lm,
    questions: Sequence[tuple[int, ...]],
    answers: Answers,
    cache,
    batch_size: int = 8,
    on_batch: Callable[[int], None] | None = None,
) -> list[tuple[np.ndarray, float]]:
    """For every question: (probability of each answer renormalised over the answers, mass).

    Next-token probabilities are cached per (model, question ids, answer ids).
    """
    keys = [_key(lm, q, answers) for q in questions]
    found: dict[str, np.ndarray] = {}
    for key in dict.fromkeys(keys):
        hit = cache.get(key)
        if hit is not None:
            found[key] = hit
    todo = list({keys[i]: i for i in range(len(keys)) if keys[i] not in found}.values())
    todo.sort(key=lambda i: (-len(questions[i]), keys[i]))
    with torch.inference_mode():
        for start in range(0, len(todo), batch_size):
            batch = todo[start : start + batch_size]
            probs = _next_token_probs(lm, [questions[i] for i in batch], answers.flat)
            for i, p in zip(batch, probs, strict=True):
                found[keys[i]] = p
                cache.put(keys[i], p)
            if on_batch is not None:
                on_batch(len(batch))
    cache.flush()
    return [_per_answer(found[k], answers) for k in keys]


def _per_answer(p: np.ndarray, answers: Answers) -> tuple[np.ndarray, float]:
    sums, at = [], 0
    for ids in answers.token_ids:
        sums.append(float(p[at : at + len(ids)].astype(np.float64).sum()))
        at += len(ids)
    mass = sum(sums)
    if mass <= 0:
        return np.full(len(sums), 1 / len(sums)), 0.0
    return np.asarray(sums) / mass, mass


def _key(lm, question: tuple[int, ...], answers: Answers) -> str:
    h = hashlib.sha256(f"judge|{JUDGE_VERSION}|{lm.sha256}|{answers.flat}|".encode())
    h.update(np.asarray(question, dtype=np.int64).tobytes())
    return h.hexdigest()


def _next_token_probs(lm, questions: list[tuple[int, ...]], token_ids: list[int]):
    from tamis.model.runner import _head, _hidden_states

    pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
    width = max(len(q) for q in questions)
    ids = torch.full((len(questions), width), pad, dtype=torch.long)
    mask = torch.zeros((len(questions), width), dtype=torch.long)
    for row, q in enumerate(questions):
        ids[row, : len(q)] = torch.tensor(q)
        mask[row, : len(q)] = 1
    hidden = _hidden_states(lm.model, ids.to(lm.device), mask.to(lm.device))
    last = hidden[torch.arange(len(questions)), torch.tensor([len(q) - 1 for q in questions])]
    probs = torch.softmax(_head(lm.model, last).float(), dim=-1)
    return [row.cpu().numpy() for row in probs[:, token_ids]]


def reflection(
    lm, records: Sequence[Record], responses: Sequence[str], cache, batch_size=8, on_batch=None
):
    """P(yes) per (record, response): the model's certainty that the response is correct and
    helpful, with the mass it put on yes/no. Higher = better."""
    tok = lm.tokenizer
    questions = [
        question_ids(
            tok,
            REFLECTION_PROMPT.format(
                prompt=clip(tok, record_prompt_text(r)), response=clip(tok, resp)
            ),
        )
        for r, resp in zip(records, responses, strict=True)
    ]
    out = answer_probs(lm, questions, Answers.of(tok, YES_NO), cache, batch_size, on_batch)
    return [(float(p[0]), mass) for p, mass in out]


def rating(lm, records: Sequence[Record], cache, batch_size=8, on_batch=None):
    """Expected rating 1..5 per record, with the mass on the digits. Higher = better."""
    tok = lm.tokenizer
    questions = [
        question_ids(
            tok,
            RATING_PROMPT.format(
                prompt=clip(tok, record_prompt_text(r)), response=clip(tok, r.response)
            ),
        )
        for r in records
    ]
    out = answer_probs(lm, questions, Answers.of(tok, DIGITS), cache, batch_size, on_batch)
    return [(float(np.dot(p, np.arange(1, 6))), mass) for p, mass in out]


def preference(
    lm, records: Sequence[Record], candidates: Sequence[str], cache, batch_size=8, on_batch=None
):
    """P(candidate better than the record's own response), the mean over both orders (the
    candidate as B, then as A), so a model that always says "A" gives 0.5."""
    tok = lm.tokenizer
    questions = []
    for r, cand in zip(records, candidates, strict=True):
        prompt, orig, new = clip(tok, record_prompt_text(r)), clip(tok, r.response), clip(tok, cand)
        questions.append(question_ids(tok, COMPARE_PROMPT.format(prompt=prompt, a=orig, b=new)))
        questions.append(question_ids(tok, COMPARE_PROMPT.format(prompt=prompt, a=new, b=orig)))
    out = answer_probs(lm, questions, Answers.of(tok, A_B), cache, batch_size, on_batch)
    return [
        0.5 * (float(out[2 * i][0][1]) + float(out[2 * i + 1][0][0])) for i in range(len(records))
    ]
