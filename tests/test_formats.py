"""Reading every input format from every file type into records: prompt, response, raw, ids."""

from __future__ import annotations

import csv
import json
import re
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tamis.base.errors import BadRecord, TamisError
from tamis.data.readers import read_dataset
from tamis.data.records import Message

HEX16 = re.compile(r"[0-9a-f]{16}")


def write(path: Path, rows: list, newline: str = "\n") -> Path:
    """Write ``rows`` in the file type named by ``path``'s suffix."""
    if path.suffix == ".jsonl":
        path.write_text(
            "".join(json.dumps(r, ensure_ascii=False) + newline for r in rows),
            encoding="utf-8",
            newline="",
        )
    elif path.suffix == ".json":
        path.write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    elif path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(rows), path)
    elif path.suffix == ".csv":
        with path.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return path


def as_read(row: dict, suffix: str) -> dict:
    """What a row looks like after a trip through a file: CSV cells are all text."""
    return {k: str(v) for k, v in row.items()} if suffix == ".csv" else row


def user(text: str) -> list[Message]:
    return [Message("user", text)]


# name: (format, rows, [(prompt, response)], file types)
FLAT = (".jsonl", ".json", ".parquet", ".csv")
NESTED = (".jsonl", ".json", ".parquet")
CASES = {
    "alpaca": (
        "alpaca",
        [
            {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
            {"instruction": "Say hello in French.", "input": "", "output": "Bonjour !"},
        ],
        [(user("Add the numbers.\n\n2, 3"), "5"), (user("Say hello in French."), "Bonjour !")],
        FLAT,
    ),
    "prompt-response": (
        "prompt-response",
        [
            {"prompt": "Capital of Peru?", "response": "Lima."},
            {"prompt": "Café or tea, «vite» ?", "response": "Tea, 茶."},
        ],
        [(user("Capital of Peru?"), "Lima."), (user("Café or tea, «vite» ?"), "Tea, 茶.")],
        FLAT,
    ),
    "prompt-completion": (
        "prompt-response",
        [
            {"prompt": "1 + 1 =", "completion": " 2"},
            {"prompt": "Roses are", "completion": " red."},
        ],
        [(user("1 + 1 ="), " 2"), (user("Roses are"), " red.")],
        FLAT,
    ),
    "sharegpt": (
        "sharegpt",
        [
            {
                "conversations": [
                    {"from": "system", "value": "Be brief."},
                    {"from": "human", "value": "Hi"},
                    {"from": "gpt", "value": "Hello."},
                ]
            },
            {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}]},
        ],
        [([Message("system", "Be brief."), Message("user", "Hi")], "Hello."), (user("2+2?"), "4")],
        NESTED,
    ),
    "messages": (
        "messages",
        [
            {
                "messages": [
                    {"role": "system", "content": "You are terse."},
                    {"role": "user", "content": "Name a planet."},
                    {"role": "assistant", "content": "Mars."},
                ]
            },
            {
                "messages": [
                    {"role": "user", "content": "Name a metal."},
                    {"role": "assistant", "content": "Iron."},
                ]
            },
        ],
        [
            ([Message("system", "You are terse."), Message("user", "Name a planet.")], "Mars."),
            (user("Name a metal."), "Iron."),
        ],
        NESTED,
    ),
}
ROUND_TRIPS = [(name, suffix) for name, case in CASES.items() for suffix in case[3]]


@pytest.mark.parametrize(("name", "suffix"), ROUND_TRIPS)
def test_round_trip(tmp_path, name, suffix):
    fmt, rows, expected, _ = CASES[name]
    data = read_dataset(write(tmp_path / f"data{suffix}", rows))
    assert data.format == fmt
    assert data.bad == []
    assert [(r.prompt, r.response) for r in data.records] == expected
    assert [r.raw for r in data.records] == [as_read(row, suffix) for row in rows]
    assert [r.index for r in data.records] == [0, 1]
    ids = [r.id for r in data.records]
    assert all(HEX16.fullmatch(i) for i in ids) and ids[0] != ids[1]


@pytest.mark.parametrize("name", list(CASES))
def test_content_ids_are_the_same_in_every_file_type(tmp_path, name):
    _, rows, _, suffixes = CASES[name]
    ids = {
        s: [r.id for r in read_dataset(write(tmp_path / f"d{s}", rows)).records] for s in suffixes
    }
    assert len({tuple(v) for v in ids.values()}) == 1, ids
    again = read_dataset(write(tmp_path / "again.jsonl", rows))  # stable from run to run
    assert [r.id for r in again.records] == ids[".jsonl"]


def test_content_id_changes_with_the_content(tmp_path):
    base = {"instruction": "Name a colour.", "input": "", "output": "Blue."}
    variants = [
        base,
        {**base, "output": "Blue"},
        {**base, "instruction": "Name a colour"},
        {**base, "input": "sky"},
    ]
    data = read_dataset(write(tmp_path / "d.jsonl", variants))
    assert len({r.id for r in data.records}) == 4


@pytest.mark.parametrize("suffix", FLAT)
@pytest.mark.parametrize("given_ids", [(7, 12), ("a-1", "b-2")])
def test_own_ids_are_kept_as_text(tmp_path, suffix, given_ids):
    rows = [
        {"id": i, "instruction": f"Task {n}", "output": f"Done {n}"}
        for n, i in enumerate(given_ids)
    ]
    data = read_dataset(write(tmp_path / f"d{suffix}", rows))
    assert [r.id for r in data.records] == [str(i) for i in given_ids]
    assert [r.raw for r in data.records] == [as_read(row, suffix) for row in rows]


def test_blank_or_null_id_falls_back_to_content_hash(tmp_path):
    rows = [
        {"id": None, "instruction": "a", "output": "b"},
        {"id": "  ", "instruction": "c", "output": "d"},
    ]
    data = read_dataset(write(tmp_path / "d.jsonl", rows))
    bare = read_dataset(write(tmp_path / "bare.jsonl", [{"instruction": "a", "output": "b"}]))
    assert all(HEX16.fullmatch(r.id) for r in data.records)
    assert data.records[0].id == bare.records[0].id
    assert data.records[0].raw == rows[0]


@pytest.mark.parametrize("suffix", NESTED)
def test_multi_turn_chat_final_assistant_turn_is_the_response(tmp_path, suffix):
    turns = [
        ("system", "Answer in one word."),
        ("user", "Colour of grass?"),
        ("assistant", "Green."),
        ("user", "And the sky?"),
        ("assistant", "Blue."),
    ]
    sharegpt_role = {"system": "system", "user": "human", "assistant": "gpt"}
    rows = [{"conversations": [{"from": sharegpt_role[r], "value": t} for r, t in turns]}]
    chat = [{"messages": [{"role": r, "content": t} for r, t in turns]}]
    for name, r in (("s", rows), ("m", chat)):
        rec = read_dataset(write(tmp_path / f"{name}{suffix}", r)).records[0]
        assert rec.prompt == [Message(role, text) for role, text in turns[:-1]]
        assert rec.response == "Blue."
        assert rec.alpaca_fields is None


def test_format_override(tmp_path):
    rows = [
        {
            "instruction": "From the instruction",
            "output": "out",
            "prompt": "From the prompt",
            "response": "resp",
        }
    ]
    path = write(tmp_path / "both.jsonl", rows)
    detected = read_dataset(path)
    assert detected.format == "alpaca" and detected.records[0].response == "out"
    forced = read_dataset(path, fmt="prompt-response")
    assert forced.format == "prompt-response"
    assert (
        forced.records[0].prompt == user("From the prompt") and forced.records[0].response == "resp"
    )


def test_format_override_that_does_not_fit(tmp_path):
    path = write(tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}])
    with pytest.raises(BadRecord) as info:
        read_dataset(path, fmt="messages")
    assert info.value.reason == "format_mismatch" and f"{path}:1" in str(info.value)
    odd = write(tmp_path / "odd.jsonl", [{"question": "x", "answer": "y"}])
    with pytest.raises(BadRecord) as info:
        read_dataset(odd, fmt="alpaca")
    assert info.value.reason == "missing_field" and "'instruction'" in str(info.value)


def test_unknown_format_name(tmp_path):
    path = write(tmp_path / "a.jsonl", [{"instruction": "x", "output": "y"}])
    with pytest.raises(
        TamisError,
        match=r"unknown format 'chatml'; choose one of: alpaca, "
        r"prompt-response, sharegpt, messages",
    ):
        read_dataset(path, fmt="chatml")


@pytest.mark.parametrize("suffix", FLAT)
def test_dolly_fields(tmp_path, suffix):
    rows = [
        {
            "instruction": "Who wrote it?",
            "context": "Hamlet is a play by Shakespeare.",
            "response": "Shakespeare.",
            "category": "closed_qa",
        },
        {"instruction": "Name a prime.", "context": "", "response": "7", "category": "open_qa"},
    ]
    data = read_dataset(write(tmp_path / f"dolly{suffix}", rows))
    assert data.format == "alpaca"
    first, second = data.records
    assert first.prompt == user("Who wrote it?\n\nHamlet is a play by Shakespeare.")
    assert first.response == "Shakespeare."
    assert first.alpaca_fields == ("Who wrote it?", "Hamlet is a play by Shakespeare.")
    assert second.prompt == user("Name a prime.") and second.alpaca_fields == ("Name a prime.", "")
    assert first.raw["category"] == "closed_qa"


def test_alpaca_fields(tmp_path):
    rows = [
        {"instruction": "Sum", "input": "1 2", "output": "3"},
        {"instruction": "Hi", "output": "Hey"},
        {"instruction": "Double", "input": 21, "output": 42},
    ]
    data = read_dataset(write(tmp_path / "a.jsonl", rows))
    assert [r.alpaca_fields for r in data.records] == [("Sum", "1 2"), ("Hi", ""), ("Double", "21")]
    assert data.records[2].response == "42" and data.records[2].raw == rows[2]
    other = read_dataset(write(tmp_path / "p.jsonl", [{"prompt": "p", "response": "r"}]))
    assert other.records[0].alpaca_fields is None


def test_jsonl_bom_crlf_and_blank_lines(tmp_path):
    rows = [{"instruction": "One", "output": "1"}, {"instruction": "Two", "output": "2"}]
    lines = [json.dumps(r).encode() for r in rows]
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + lines[0] + b"\r\n\r\n   \r\n" + lines[1] + b"\r\n\n\t\n")
    data = read_dataset(path)
    assert data.n_input == 2 and data.bad == []
    assert [r.raw for r in data.records] == rows
    assert [r.response for r in data.records] == ["1", "2"]
    assert [r.where for r in data.records] == [f"{path}:1", f"{path}:4"]
    assert [r.index for r in data.records] == [0, 1]


def test_json_bom_and_crlf(tmp_path):
    rows = [{"prompt": "Ping", "response": "Pong"}]
    path = tmp_path / "d.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(rows, indent=2).replace("\n", "\r\n").encode())
    data = read_dataset(path)
    assert data.format == "prompt-response" and [r.raw for r in data.records] == rows
    assert data.records[0].where == f"{path}: item 0"


def test_csv_bom_crlf_embedded_newlines_and_commas(tmp_path):
    rows = [
        {
            "instruction": "List, then explain",
            "input": "a, b\nc",
            "output": "Line one\r\nLine, two",
        },
        {"instruction": 'Quote "this"', "input": "", "output": "done"},
    ]
    path = tmp_path / "d.csv"
    with path.open("w", encoding="utf-8-sig", newline="") as f:  # utf-8-sig writes a BOM
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\r\n")
        writer.writeheader()
        writer.writerows(rows)
    assert path.read_bytes().startswith(b"\xef\xbb\xbfinstruction,")
    data = read_dataset(path)
    assert data.format == "alpaca" and data.bad == []
    assert [r.raw for r in data.records] == rows
    assert data.records[0].prompt == user("List, then explain\n\na, b\nc")
    assert data.records[0].response == "Line one\r\nLine, two"


solid = st.text(max_size=30).filter(lambda s: s.strip())
alpaca = st.fixed_dictionaries(
    {"instruction": st.text(max_size=30), "input": st.text(max_size=30), "output": solid}
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(alpaca, min_size=1, max_size=8))
def test_any_unicode_alpaca_jsonl_round_trips(rows):
    rows = [{"id": f"r{i}", **row} for i, row in enumerate(rows)]  # ids: equal content is allowed
    with tempfile.TemporaryDirectory() as tmp:
        data = read_dataset(write(Path(tmp) / "d.jsonl", rows))
    assert data.bad == [] and len(data.records) == len(rows)
    assert [r.raw for r in data.records] == rows
    assert [r.response for r in data.records] == [row["output"] for row in rows]
    for rec, row in zip(data.records, rows, strict=True):
        extra = f"\n\n{row['input']}" if row["input"].strip() else ""
        assert rec.prompt == user(row["instruction"] + extra)


def test_a_field_mapping_reads_fields_of_other_names_and_keeps_the_users(tmp_path):
    rows = [
        {"uid": "q1", "question": "Why is the sky blue?", "answer": "Rayleigh scattering."},
        {"uid": "q2", "question": "Name a prime.", "answer": "7"},
    ]
    path = write(tmp_path / "qa.jsonl", rows)
    fields = [("instruction", "question"), ("output", "answer"), ("id", "uid")]
    data = read_dataset(path, fields=fields)
    assert data.format == "alpaca" and data.fields == tuple(fields)
    assert [r.id for r in data.records] == ["q1", "q2"] and not data.records[0].hashed_id
    assert data.records[1].response == "7" and data.records[1].prompt[-1].content == "Name a prime."
    assert [r.raw for r in data.records] == rows  # outputs keep the user's own names
    # a column of a name tamis reads, mapped to another field, is not read twice
    swapped = write(tmp_path / "s.jsonl", [{"instruction": "Say hi.", "output": "x", "good": "Hi"}])
    fields = [("output", "good")]
    assert read_dataset(swapped, fields=fields).records[0].response == "Hi"
    with pytest.raises(TamisError, match="--field id is given twice"):
        read_dataset(path, fields=[("id", "uid"), ("id", "question")])
    with pytest.raises(TamisError, match=r"cannot tell the format .* \(--field instruction="):
        read_dataset(path)


@pytest.mark.parametrize("text", ["output", "answer=output", "output=", "=answer"])
def test_a_bad_field_mapping_is_explained(text):
    from tamis.data.records import parse_field

    with pytest.raises(TamisError, match=f"--field {re.escape(text)}: give FIELD=COLUMN"):
        parse_field(text)
