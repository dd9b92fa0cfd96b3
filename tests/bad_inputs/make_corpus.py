"""Write the bad-input corpus next to this file (run once; the files are committed).

    .venv/bin/python tests/bad_inputs/make_corpus.py

Every file is small; the large cases (a 10 MB record, multi-megabyte lines) are generated at test
time by ``tests/test_corpus.py``. What each file should do is in ``cases.json``.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent

G1 = {"instruction": "Name a primary colour.", "input": "", "output": "Blue."}
G2 = {"instruction": "Translate to French.", "input": "Good morning", "output": "Bonjour."}
G3 = {"instruction": "What is 7 times 6?", "input": "", "output": "42"}
CHAT = {
    "conversations": [
        {"from": "human", "value": "Name a planet."},
        {"from": "gpt", "value": "Mars."},
    ]
}
STAR = {
    "conversations": [
        {"from": "human", "value": "Name a star."},
        {"from": "gpt", "value": "The Sun."},
    ]
}
MESSAGES = {
    "messages": [
        {"role": "user", "content": "Name a metal."},
        {"role": "assistant", "content": "Iron."},
    ]
}

GAS = {
    "messages": [
        {"role": "user", "content": "Name a gas."},
        {"role": "assistant", "content": "Helium."},
    ]
}


def j(obj) -> bytes:
    return json.dumps(obj, ensure_ascii=False).encode("utf-8")


def lines(*items: bytes | dict, end: bytes = b"\n") -> bytes:
    return b"".join((x if isinstance(x, bytes) else j(x)) + end for x in items)


def jsonl_files() -> dict[str, bytes]:
    nested = b'{"instruction": "Deep", "output": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    emoji_rtl = [
        {
            "id": "emoji",
            "instruction": "Describe the family emoji 👨‍👩‍👧‍👦 and the flag 🇫🇷 (skin tone 👍🏽).",
            "input": "",
            "output": "A family of four 👨‍👩‍👧‍👦, the French flag 🇫🇷, thumbs up 👍🏽; 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 🀄.",
        },
        {
            "id": "arabic",
            "instruction": "ترجم إلى الإنجليزية: \u200fمرحبا بالعالم\u200f",
            "input": "",
            "output": "Hello, world (\u202bمرحبا\u202c).",
        },
        {
            "id": "hebrew-mixed",
            "instruction": "Mixed direction: שלום world 123 עולם.",
            "input": "\u2067עברית\u2069 and English",
            "output": "שלום means hello; e\u0301 is e + a combining accent.",
        },
    ]
    control = [
        {
            "id": "separators",
            "instruction": "Line\u2028separator and paragraph\u2029separator, next line\u0085here.",
            "input": "",
            "output": "Kept as they are: \u2028 \u2029 \u0085.",
        },
        {
            "id": "controls",
            "instruction": "NUL \u0000, escape \u001b[31mred\u001b[0m, zero width \u200b space.",
            "input": "",
            "output": "Tab\there, bell \u0007, BOM in text \ufeff.",
        },
    ]
    return {
        "truncated_json.jsonl": lines(G1, b'{"instruction": "Name a fruit.", "output": "App', G3),
        "truncated_last_line.jsonl": lines(G1, G2) + b'{"instruction": "What is 7 times',
        "not_object_list.jsonl": lines(G1, ["Name a colour.", "Blue."], G2),
        "not_object_scalars.jsonl": lines(G1, b'"just a sentence"', b"42", b"null", G2),
        "wrong_type_list.jsonl": lines(G1, {**G2, "output": ["Bonjour", "Salut"]}, G3),
        "wrong_type_object.jsonl": lines(G1, {**G2, "output": {"text": "Bonjour."}}, G3),
        "wrong_type_bool.jsonl": lines(G1, {**G2, "output": True}, G3),
        "infinite_number.jsonl": lines(G1, b'{"instruction": "Big?", "output": 1e999}', G3),
        "null_output.jsonl": lines(G1, {**G2, "output": None}, G3),
        "null_instruction.jsonl": lines(G1, {**G2, "instruction": None}, G3),
        "nan_output.jsonl": lines(G1, b'{"instruction": "Half of 0/0?", "output": NaN}', G3),
        "id_wrong_type.jsonl": lines({"id": "a", **G1}, {"id": 1.5, **G2}, {"id": [3], **G3}),
        "id_bool.jsonl": lines({"id": "a", **G1}, {"id": True, **G2}),
        "empty_response.jsonl": lines(G1, {**G2, "output": ""}, {**G3, "output": " \n\t"}),
        "duplicate_ids.jsonl": lines({"id": 7, **G1}, {"id": "7", **G2}, {"id": 8, **G3}),
        "duplicate_content.jsonl": lines(G1, G2, G1, G3, G2),
        "mixed_formats.jsonl": lines(G1, CHAT, {"prompt": "Hi", "response": "Hello"}, MESSAGES),
        "conflicting_fields.jsonl": lines({**G1, **MESSAGES}, {**G2, **GAS}),
        "sharegpt.jsonl": lines(CHAT, STAR),
        "latin1_line.jsonl": lines(
            G1, '{"instruction": "Café?", "output": "Olé"}'.encode("latin-1"), G3
        ),
        "utf16.jsonl": lines(G1, G2).decode("utf-8").encode("utf-16"),
        "gzip_named_jsonl.jsonl": gzip.compress(lines(G1, G2, G3), mtime=0),
        "lone_surrogate.jsonl": lines(
            G1,
            b'{"instruction": "Half an emoji", "output": "\\ud83d alone"}',
            b'{"instruction": "A whole emoji", "output": "\\ud83d\\ude00 paired"}',
        ),
        "deep_nesting.jsonl": lines(G1, nested, G3),
        "huge_number.jsonl": lines(
            G1, b'{"instruction": "Count", "output": ' + b"9" * 5000 + b"}", G3
        ),
        "two_records_one_line.jsonl": lines(G1, j(G2) + b" " + j(G3)),
        "cr_line_ends.jsonl": lines(G1, G2, G3, end=b"\r"),
        "pretty_list.jsonl": json.dumps([G1, G2], indent=2).encode(),
        "only_bad_lines.jsonl": lines(b"{", b"not json", b'{"instruction": '),
        "only_bad_records.jsonl": lines(*({**g, "output": ""} for g in (G1, G2, G3))),
        "empty.jsonl": b"",
        "blank_lines.jsonl": b"\n   \r\n\t\n\n",
        "bom_crlf.jsonl": b"\xef\xbb\xbf"
        + lines(G1, G2, end=b"\r\n")
        + b"\r\n"
        + lines(G3, end=b"\r\n"),
        "concatenated_bom.jsonl": b"\xef\xbb\xbf" + lines(G1, G2) + b"\xef\xbb\xbf" + lines(G3),
        "emoji_rtl.jsonl": lines(*emoji_rtl),
        "control_chars.jsonl": lines(*control),
        "numbers_as_text.jsonl": lines(
            {"instruction": 42, "input": 3.5, "output": 7},
            b'{"instruction": "Ten to the power 400?", "output": 1' + b"0" * 400 + b"}",
            G1,
        ),
    }


def json_files() -> dict[str, bytes]:
    return {
        "empty_list.json": b"[]",
        "json_not_a_list.json": b'"instruction: say hi; output: hi"',
        "json_single_object.json": j(G1),
        "json_null_item.json": j([G1, None, G2]),
        "json_lines_in.json": lines(G1, G2),
        "json_truncated.json": json.dumps([G1, G2], indent=2).encode()[:-30],
        "json_surrogate.json": b"["
        + j(G1)
        + b', {"instruction": "x", "output": "\\udc00"}, '
        + j(G2)
        + b"]",
        "bom_crlf.json": b"\xef\xbb\xbf"
        + json.dumps({"data": [G1, G2]}, indent=2).replace("\n", "\r\n").encode(),
    }


def text(*rows: str, end: str = "\n", encoding: str = "utf-8") -> bytes:
    return "".join(row + end for row in rows).encode(encoding)


def csv_files() -> dict[str, bytes]:
    header = "instruction,input,output"
    return {
        "bom_crlf.csv": b"\xef\xbb\xbf"
        + text(
            header,
            "Name a colour.,,Blue.",
            "Translate to French.,Good morning,Bonjour.",
            end="\r\n",
        ),
        "csv_embedded_newlines.csv": text(
            header,
            '"List three, then explain","a, b\nc","Line one\r\nLine, two\n""quoted"""',
            "Name a colour.,,Blue.",
        ),
        "csv_unclosed_quote.csv": text(
            "instruction,output",
            "Name a colour.,Blue.",
            'Name a fruit.,"Apple',
            "What is 7 times 6?,42",
            "Name a metal.,Iron.",
        ),
        "csv_extra_cells.csv": text(
            "instruction,output", "Name a colour.,Blue.", "List: a, b,c", "Name a metal.,Iron."
        ),
        "csv_short_row.csv": text(
            header, "Name a colour.,,Blue.", "Name a fruit.", "Name a metal.,,Iron."
        ),
        "csv_duplicate_header.csv": text("instruction,output,output", "Name a colour.,Blue.,Red."),
        "csv_wrong_columns.csv": text(
            "question,answer", "Why is the sky blue?,Rayleigh scattering."
        ),
        "csv_latin1.csv": text(
            "instruction,output", "Name a colour.,Blue.", "Café?,Olé", encoding="latin-1"
        ),
        "csv_header_only.csv": text(header),
    }


def parquet_files() -> dict[str, pa.Table]:
    return {
        "parquet_wrong_schema.parquet": pa.table(
            {"question": ["Why is the sky blue?"], "answer": ["Rayleigh scattering."]}
        ),
        "parquet_list_output.parquet": pa.table(
            {
                "instruction": ["Name two colours.", "Name a fruit."],
                "output": [["Blue", "Red"], ["Apple"]],
            }
        ),
        "parquet_null_output.parquet": pa.table(
            {"instruction": ["Name a colour.", "Name a fruit."], "output": ["Blue.", None]}
        ),
        "parquet_numbers.parquet": pa.table(
            {
                # pandas writes an integer column with a gap, and an all-missing text column,
                # as floats with NaN
                "id": pa.array([1.0, 2.0, float("nan")]),
                "instruction": ["What is 7 times 6?", "What is 2 plus 2?", "What is 9 minus 3?"],
                "input": pa.array([float("nan")] * 3),
                "output": pa.array([42, 4, 6], pa.int64()),
            }
        ),
    }


def main() -> None:
    for name, content in {**jsonl_files(), **json_files(), **csv_files()}.items():
        (HERE / name).write_bytes(content)
    for name, table in parquet_files().items():
        pq.write_table(table, HERE / name)
    whole = (HERE / "parquet_null_output.parquet").read_bytes()
    (HERE / "parquet_damaged.parquet").write_bytes(whole[: len(whole) // 2])
    (HERE / "data.txt").write_bytes(lines(G1, G2))


if __name__ == "__main__":
    main()
