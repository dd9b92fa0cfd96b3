"""The one record type and the input formats it is normalised from.

A :class:`Record` holds the prompt as chat messages, the response that is scored, and the
original fields untouched (``raw``), so the curated output is exactly what came in.

Formats (detected from a file's first record, or forced with ``--format``):

- ``alpaca``: ``instruction``, optional ``input`` (or Dolly's ``context``), ``output`` (or
  ``response``). The user message is the instruction, then a blank line and the input if any.
- ``prompt-response``: ``prompt`` and ``response`` (or ``completion``).
- ``sharegpt``: ``conversations``, a list of ``{"from": human|gpt|system, "value": ...}``.
- ``messages``: ``messages``, a list of ``{"role": system|user|assistant, "content": ...}``.

For multi-turn chats the scored response is the final assistant turn; every earlier turn
(system, user and assistant) is context and belongs to the prompt.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tamis.base.errors import BadRecord, TamisError

FORMATS = ("alpaca", "prompt-response", "sharegpt", "messages")
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bing": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "system": "system",
}
_CHAT_ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


@dataclass
class Record:
    """One training example.

    ``prompt`` is every message before the scored response; ``alpaca_fields`` keeps the
    (instruction, input) pair of Alpaca-style records so the papers' Alpaca template can render
    them exactly; ``raw`` is the input object as read, never modified.
    """

    id: str
    prompt: list[Message]
    response: str
    raw: dict[str, Any] = field(repr=False)
    where: str = ""
    alpaca_fields: tuple[str, str] | None = None
    index: int = -1  # position in the input file, 0-based
    hashed_id: bool = False  # the id is a hash of the content (the record has no id of its own)


def content_id(
    prompt: list[Message], response: str, alpaca_fields: tuple[str, str] | None = None
) -> str:
    """A stable id from the record's content: 16 hex digits of sha256 over prompt and response
    (and the Alpaca instruction/input split, which the Alpaca template renders differently)."""
    payload = json.dumps(
        {
            "prompt": [[m.role, m.content] for m in prompt],
            "response": response,
            "alpaca": list(alpaca_fields) if alpaca_fields else None,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]


def matching_formats(obj: dict[str, Any]) -> list[str]:
    """Every format whose key fields ``obj`` has, most specific first."""
    found = []
    if isinstance(obj.get("conversations"), list):
        found.append("sharegpt")
    if isinstance(obj.get("messages"), list):
        found.append("messages")
    if "instruction" in obj and ("output" in obj or "response" in obj):
        found.append("alpaca")
    if "prompt" in obj and ("response" in obj or "completion" in obj):
        found.append("prompt-response")
    return found


def detect_format(obj: dict[str, Any]) -> str | None:
    """The format whose key fields ``obj`` has, or None."""
    found = matching_formats(obj)
    return found[0] if found else None


def json_type(value: Any) -> str:
    """The JSON name of a parsed value's type, for messages: ``null``, not ``NoneType``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    names = {str: "string", list: "list", dict: "object"}
    return names.get(type(value), type(value).__name__)


# The fields tamis reads, which --field can take from a column of another name.
FIELD_NAMES = (
    "id", "instruction", "input", "output", "prompt", "response", "completion", "system",
    "conversations", "messages",
)  # fmt: skip


def parse_field(text: str) -> tuple[str, str]:
    """``"output=answer"`` -> ``("output", "answer")``: tamis' field, and the column it is in."""
    name, sep, column = text.partition("=")
    name, column = name.strip(), column.strip()
    if not sep or not column or name not in FIELD_NAMES:
        raise TamisError(
            f"--field {text}: give FIELD=COLUMN with FIELD one of {', '.join(FIELD_NAMES)} "
            "(e.g. --field instruction=question --field output=answer)"
        )
    return name, column


def mapped(obj: Any, fields: Sequence[Sequence[str]]) -> Any:
    """``obj`` as tamis reads it under the field mapping ``fields`` ((field, column) pairs): each
    field taken from its column, the column's own name dropped. The user's object is unchanged."""
    if not fields or not isinstance(obj, dict):
        return obj
    view = dict(obj)
    for _, column in fields:
        if column in obj:
            view.pop(column, None)
    for name, column in fields:
        if column in obj:
            view[name] = obj[column]
    return view


def check_object(obj: Any, where: str) -> None:
    """Raise ``not_an_object`` unless ``obj`` is a JSON object (a dict)."""
    if not isinstance(obj, dict):
        raise BadRecord(
            where,
            "not_an_object",
            f"expected a JSON object, got {json_type(obj)}",
            'each record must be an object such as {"instruction": ..., "output": ...}',
        )


def to_record(obj: Any, fmt: str, where: str) -> Record:
    """Normalise one input object of format ``fmt`` into a :class:`Record`.

    Raises :class:`BadRecord` naming ``where`` when the object does not fit.
    """
    check_object(obj, where)
    found = matching_formats(obj)
    if found and fmt not in found:
        raise BadRecord(
            where,
            "format_mismatch",
            f"record looks like '{found[0]}' but the file is read as '{fmt}'",
            "split mixed files, pass --format, or use --skip-bad",
        )
    prompt, response, alpaca = _PARSERS[fmt](obj, where)
    if not response.strip():
        raise BadRecord(
            where, "empty_response", "the response is empty", "remove the record or use --skip-bad"
        )
    rid = _nan_to_none(obj.get("id"))
    if isinstance(rid, float) and rid.is_integer():
        rid = int(rid)  # pandas stores an integer column with gaps as floats
    hashed = rid is None or (isinstance(rid, str) and not rid.strip())
    if hashed:
        rid = content_id(prompt, response, alpaca)
    elif isinstance(rid, bool) or not isinstance(rid, (str, int)):
        raise BadRecord(
            where,
            "wrong_type",
            f"field 'id' must be a string or integer, got {json_type(rid)} {_short(rid)}",
            "fix the id or drop the field so tamis hashes the content",
        )
    return Record(str(rid), prompt, response, obj, where, alpaca, hashed_id=hashed)


def _nan_to_none(value: Any) -> Any:
    # pandas writes a missing value as NaN: it counts as null.
    return None if isinstance(value, float) and math.isnan(value) else value


def _text(obj: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = _nan_to_none(obj.get(key))
    if value is None:
        if not required:
            return ""
        raise BadRecord(
            where,
            "missing_field",
            f"field '{key}' is missing or null",
            f"add '{key}' or use --skip-bad",
        )
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(value)
    if not isinstance(value, str):
        raise BadRecord(
            where,
            "wrong_type",
            f"field '{key}' must be text, got {json_type(value)} {_short(value)}",
            f"make '{key}' a string or use --skip-bad",
        )
    return value


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _first_key(obj: dict[str, Any], keys: tuple[str, ...]) -> str:
    return next((k for k in keys if k in obj), keys[0])


def _parse_alpaca(obj, where):
    instruction = _text(obj, "instruction", where)
    extra = _text(obj, _first_key(obj, ("input", "context")), where, required=False)
    response = _text(obj, _first_key(obj, ("output", "response")), where)
    user = instruction if not extra.strip() else f"{instruction}\n\n{extra}"
    return [Message("user", user)], response, (instruction, extra)


def _parse_prompt_response(obj, where):
    prompt = _text(obj, "prompt", where)
    response = _text(obj, _first_key(obj, ("response", "completion")), where)
    return [Message("user", prompt)], response, None


def _parse_turns(turns, where, role_key, text_key, role_map, field_name):
    if not isinstance(turns, list) or not turns:
        raise BadRecord(
            where,
            "wrong_type",
            f"field '{field_name}' must be a non-empty list of turns",
            "fix the record or use --skip-bad",
        )
    messages = []
    for i, turn in enumerate(turns):
        if not isinstance(turn, dict):
            raise BadRecord(
                where,
                "wrong_type",
                f"{field_name}[{i}] is not an object",
                f"each turn needs '{role_key}' and '{text_key}'",
            )
        role = role_map.get(str(turn.get(role_key, "")).lower())
        if role is None:
            raise BadRecord(
                where,
                "wrong_type",
                f"{field_name}[{i}] has unknown {role_key} {turn.get(role_key)!r}",
                f"use one of: {', '.join(sorted(set(role_map)))}",
            )
        place = f"{field_name}[{i}]"
        if isinstance(turn.get(text_key), list):  # OpenAI-style content parts
            text = _parts_text(turn[text_key], where, f"{place}.{text_key}")
        else:
            text = _text(turn, text_key, f"{where} {place}")
        messages.append(Message(role, text))
    if messages[-1].role != "assistant":
        raise BadRecord(
            where,
            "missing_field",
            f"the last turn of '{field_name}' is not from the assistant",
            "the scored response is the final assistant turn; end each chat with one",
        )
    if not any(m.role == "user" for m in messages[:-1]):
        raise BadRecord(
            where,
            "missing_field",
            f"'{field_name}' has no user turn before the response",
            "add the user's prompt or use --skip-bad",
        )
    return messages[:-1], messages[-1].content, None


# The text kinds of OpenAI's content parts (chat completions, and the responses API's input and
# output text); any other kind (an image, audio, a file) is not text a language model scores.
TEXT_PARTS = ("text", "input_text", "output_text")


def _parts_text(parts: list, where: str, place: str) -> str:
    """A turn's content given as a list of typed parts: the text parts joined by a line break
    (one part reads exactly like plain text); any other part makes the record bad."""
    texts = []
    for j, part in enumerate(parts):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in TEXT_PARTS or not isinstance(part.get("text"), str):
            what = (
                f"a '{kind}' part" if isinstance(kind, str) else f"{json_type(part)} {_short(part)}"
            )
            raise BadRecord(
                where,
                "unsupported_content",
                f"{place}[{j}] is {what}; tamis scores text only",
                "keep the text parts ({'type': 'text', 'text': ...}) or use --skip-bad",
            )
        texts.append(part["text"])
    if not texts:
        raise BadRecord(where, "missing_field", f"{place} is an empty list", "add the text")
    return "\n".join(texts)


def _parse_sharegpt(obj, where):
    return _parse_turns(
        obj.get("conversations"), where, "from", "value", _SHAREGPT_ROLES, "conversations"
    )


def _parse_messages(obj, where):
    roles = {r: r for r in _CHAT_ROLES}
    return _parse_turns(obj.get("messages"), where, "role", "content", roles, "messages")


_PARSERS = {
    "alpaca": _parse_alpaca,
    "prompt-response": _parse_prompt_response,
    "sharegpt": _parse_sharegpt,
    "messages": _parse_messages,
}


def with_response(record: Record, fmt: str, response: str) -> dict[str, Any]:
    """A copy of ``record.raw`` with the scored response replaced by ``response`` (for CLEAR's
    corrections): the same field the reader took it from, every other field untouched."""
    import copy

    obj = copy.deepcopy(record.raw)
    if fmt == "alpaca":
        obj[_first_key(obj, ("output", "response"))] = response
    elif fmt == "prompt-response":
        obj[_first_key(obj, ("response", "completion"))] = response
    else:
        turns, key = (
            (obj["conversations"], "value") if fmt == "sharegpt" else (obj["messages"], "content")
        )
        turns[-1][key] = response
    return obj
