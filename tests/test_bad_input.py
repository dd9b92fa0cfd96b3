"""Bad input: one clear line and exit code 2 from the CLI, or with --skip-bad a stored reason.

Every error here is raised while reading, before the model loads, so these runs are fast; only
the last test loads the real small model.
"""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tamis.base.errors import BadRecord, TamisError
from tamis.cli import main
from tamis.data.readers import read_dataset

G1 = {"instruction": "Name a colour.", "output": "Blue."}
G2 = {"instruction": "Name a fruit.", "output": "Apple."}
S1 = {"conversations": [{"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello."}]}
S2 = {"conversations": [{"from": "human", "value": "Bye"}, {"from": "gpt", "value": "See you."}]}
M1 = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello."}]}


def line(obj) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode()


# Record-level cases, one bad record among good ones in a .jsonl file:
# name: (lines, index of the bad line, reason, words of the message, words of the fix)
RECORDS = {
    "malformed_json": (
        [G1, b'{"instruction": "x", "output": ', G2],
        1,
        "bad_json",
        "invalid JSON",
        "fix the line",
    ),
    "not_an_object": ([G1, ["x", "y"], G2], 1, "not_an_object", "got list", "must be an object"),
    "missing_field": (
        [G1, {"instruction": "x"}, G2],
        1,
        "missing_field",
        "'output' is missing",
        "add 'output'",
    ),
    "missing_field_first": (
        [{"instruction": "x"}, G1, G2],
        0,
        "missing_field",
        "'output' is missing",
        "add 'output'",
    ),
    "null_field": (
        [G1, {"instruction": "x", "output": None}, G2],
        1,
        "missing_field",
        "'output' is missing or null",
        "add 'output'",
    ),
    "wrong_type": (
        [G1, {"instruction": "x", "output": ["a"]}, G2],
        1,
        "wrong_type",
        "'output' must be text, got list",
        "make 'output' a string",
    ),
    "bool_id": (
        [G1, {"id": True, **G2}],
        1,
        "wrong_type",
        "'id' must be a string or integer",
        "fix the id",
    ),
    "empty_response": (
        [G1, {"instruction": "x", "output": ""}, G2],
        1,
        "empty_response",
        "response is empty",
        "remove the record",
    ),
    "whitespace_response": (
        [G1, {"instruction": "x", "output": " \n\t "}, G2],
        1,
        "empty_response",
        "response is empty",
        "remove the record",
    ),
    "latin1": (
        [G1, '{"instruction": "Café", "output": "Olé"}'.encode("latin-1"), G2],
        1,
        "bad_encoding",
        "not valid UTF-8",
        "re-encode the file as UTF-8",
    ),
    "duplicate_id": (
        [{"id": 5, **G1}, {"id": "5", **G2}],
        1,
        "duplicate_id",
        "id '5' was already used at",
        "give every record its own id",
    ),
    "duplicate_content": (
        [G1, G2, G1],
        2,
        "duplicate_id",
        "same prompt and response as",
        "remove the duplicate",
    ),
    "mixed_formats": (
        [G1, S1, G2],
        1,
        "format_mismatch",
        "looks like 'sharegpt'",
        "split mixed files, pass --format",
    ),
    "last_turn_not_gpt": (
        [S1, {"conversations": [*S2["conversations"], {"from": "human", "value": "Hm?"}]}, S2],
        1,
        "missing_field",
        "last turn of 'conversations' is not from the assistant",
        "end each chat with one",
    ),
    "unknown_role": (
        [
            M1,
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "robot", "content": "Beep."},
                ]
            },
        ],
        1,
        "wrong_type",
        "messages[1] has unknown role 'robot'",
        "use one of: assistant, system, user",
    ),
}


def write_lines(path: Path, lines) -> Path:
    path.write_bytes(b"".join(line(x) + b"\n" for x in lines))
    return path


def parquet_bytes(tmp_path: Path) -> bytes:
    pq.write_table(pa.Table.from_pylist([G1, G2]), tmp_path / "ok.parquet")
    return (tmp_path / "ok.parquet").read_bytes()


# File-level cases: the whole file is unusable, --skip-bad or not.
# name: (file name, content (None: no file), where suffix, words of the message,
#        words of the fix)
FILES = {
    "empty_file": ("d.jsonl", b"", "", "the file is empty", "point tamis at a file with records"),
    "only_blank_lines": ("d.jsonl", b"\n  \n\r\n\t\n", "", "no records found", "add records"),
    "unknown_extension": (
        "d.txt",
        line(G1),
        "",
        "unsupported file type '.txt'",
        "use one of: .jsonl, .json, .parquet, .csv",
    ),
    "missing_file": ("nope.jsonl", None, "", "no such file", "check the path"),
    "json_holding_json_lines": (
        "d.json",
        line(G1) + b"\n" + line(G2) + b"\n",
        ":2",
        "invalid JSON",
        "rename the file to .jsonl",
    ),
    "latin1_json": (
        "d.json",
        '[{"instruction": "Café", "output": "Olé"}]'.encode("latin-1"),
        ":1",
        "not valid UTF-8",
        "re-encode the file as UTF-8",
    ),
    "latin1_csv": (
        "d.csv",
        "instruction,output\nCafé,Olé\n".encode("latin-1"),
        ":2",
        "not valid UTF-8",
        "re-encode the file as UTF-8",
    ),
    "damaged_parquet": (
        "d.parquet",
        parquet_bytes,
        "",
        "not a readable Parquet file",
        "check the file",
    ),
    "csv_without_columns": (
        "d.csv",
        b"question,answer\nWhy?,Because.\n",
        ":2",
        "cannot tell the format from fields ['answer', 'question']",
        "map your fields to these names (--field instruction=question --field output=answer)",
    ),
}


def make_file(tmp_path: Path, name: str) -> Path:
    filename, content, *_ = FILES[name]
    path = tmp_path / filename
    if callable(content):
        whole = content(tmp_path)
        content = whole[: len(whole) // 2]  # cut off: no footer
    if content is not None:
        path.write_bytes(content)
    return path


def run_cli(capsys, args: list[str]) -> str:
    """Run the CLI, check it failed the way a user mistake should, and return the error line."""
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("tamis: error: ")
    return lines[0]


@pytest.mark.parametrize("name", list(RECORDS))
def test_bad_record_stops_the_cli_with_one_line(tmp_path, capsys, name):
    lines, bad_at, _, message, fix = RECORDS[name]
    path = write_lines(tmp_path / "data.jsonl", lines)
    error = run_cli(capsys, ["score", str(path), "-o", str(tmp_path / "out")])
    assert error.startswith(f"tamis: error: {path}:{bad_at + 1}: ")
    assert message in error and fix in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name", list(FILES))
def test_bad_file_stops_the_cli_with_one_line(tmp_path, capsys, name):
    _, _, where, message, fix = FILES[name]
    path = make_file(tmp_path, name)
    error = run_cli(capsys, ["score", str(path), "-o", str(tmp_path / "out")])
    assert error.startswith(f"tamis: error: {path}{where}: ")
    assert message in error and fix in error


def test_unknown_format_option_exits_2(tmp_path, capsys):
    path = write_lines(tmp_path / "data.jsonl", [G1])
    with pytest.raises(SystemExit) as info:
        main(["score", str(path), "-o", str(tmp_path / "out"), "--format", "chatml"])
    assert info.value.code == 2
    assert "invalid choice: 'chatml'" in capsys.readouterr().err


@pytest.mark.parametrize("name", list(RECORDS))
def test_skip_bad_keeps_every_record_accounted_for(tmp_path, name):
    lines, bad_at, reason, message, _ = RECORDS[name]
    path = write_lines(tmp_path / "data.jsonl", lines)
    data = read_dataset(path, skip_bad=True)
    assert len(data.records) + len(data.bad) == len(lines)
    [bad] = data.bad
    assert (bad.index, bad.reason, bad.where) == (bad_at, reason, f"{path}:{bad_at + 1}")
    assert message in bad.detail
    original = lines[bad_at]
    if reason == "bad_json":
        assert bad.raw == original.decode()
    elif reason == "bad_encoding":
        assert bad.raw == original.decode("utf-8", "replace") and "\ufffd" in bad.raw
    else:
        assert bad.raw == original
    good = [x for i, x in enumerate(lines) if i != bad_at]
    assert [r.raw for r in data.records] == good
    assert [r.index for r in data.records] == [i for i in range(len(lines)) if i != bad_at]


@pytest.mark.parametrize("name", list(FILES))
def test_skip_bad_does_not_hide_a_bad_file(tmp_path, name):
    path = make_file(tmp_path, name)
    with pytest.raises(TamisError) as info:
        read_dataset(path, skip_bad=True)
    assert not isinstance(info.value, BadRecord)


def test_csv_row_with_extra_cells(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text(
        "instruction,output\nName a colour.,Blue.\nList: a, b,c\nName a fruit.,Apple.\n"
    )
    data = read_dataset(path, skip_bad=True)
    assert [b.reason for b in data.bad] == ["bad_csv"] and data.bad[0].where == f"{path}:3"
    assert len(data.records) == 2 and data.n_input == 3


@pytest.mark.model
def test_run_with_skip_bad_end_to_end(tmp_path):
    g3 = {"instruction": "Name a tree.", "output": "Oak."}
    broken = '{"instruction": "Name a bird.", "output": "Owl."'
    empty = {"instruction": "Name a fish.", "output": ""}
    missing = {"instruction": "Name a stone."}
    path = write_lines(tmp_path / "data.jsonl", [G1, broken.encode(), G2, empty, g3, missing])
    out = tmp_path / "out"
    assert (
        main(
            ["run", str(path), "-o", str(out), "--skip-bad", "--keep", "2", "--scorer", "ppl", "-q"]
        )
        == 0
    )
    selected = [json.loads(x) for x in (out / "selected.jsonl").read_text().splitlines()]
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    assert len(selected) == 2 and all(s in (G1, G2, g3) for s in selected)
    bad = {r["reason"]: r for r in rejected if r["reason"] != "ranked_out"}
    assert set(bad) == {"bad_json", "empty_response", "missing_field"}
    assert bad["bad_json"]["text"] == broken and bad["bad_json"]["where"] == f"{path}:2"
    assert (
        bad["empty_response"]["record"] == empty and bad["empty_response"]["where"] == f"{path}:4"
    )
    assert (
        bad["missing_field"]["record"] == missing and bad["missing_field"]["where"] == f"{path}:6"
    )
    [ranked_out] = [r for r in rejected if r["reason"] == "ranked_out"]
    assert ranked_out["record"] in (G1, G2, g3) and ranked_out["record"] not in selected
    manifest = json.loads((out / "manifest.json").read_text())
    counts = manifest["counts"]
    assert manifest["input"]["records"] == counts["input"] == 6
    assert (counts["selected"], counts["rejected"]) == (2, 4)
    assert counts["rejected_by_reason"] == {
        "bad_json": 1,
        "empty_response": 1,
        "missing_field": 1,
        "ranked_out": 1,
    }
