"""The bad-input corpus: every malformed or awkward file in ``tests/bad_inputs/``, run through the
CLI and the readers.

``cases.json`` says what each file must do:

- ``error``: without ``--skip-bad``, ``tamis score`` exits 2 with one line naming the file and
  line (or item, or row), what is wrong and the fix; with ``--skip-bad`` the bad records are
  set aside with the listed reasons and every input record is accounted for (``skip_bad``), or,
  when nothing usable is left, the run still stops with exit 2 (``skip_bad.error``);
- ``file_error``: exit 2 with one line, with or without ``--skip-bad``;
- ``accepted``: read as is, every record's original object equal to an independent parse of the
  file, text exact to the character.

Every error is raised while reading, before the model loads, so these runs are fast; the last
test loads the real small model once for an end-to-end ``tamis run --skip-bad``.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tamis.base.files import jsonl_line
from tamis.cli import main
from tamis.data.outputs import rejected_item
from tamis.data.readers import read_dataset

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
CASES = json.loads((CORPUS / "cases.json").read_text(encoding="utf-8"))
TEN_MB = 10_000_000

G1 = {"instruction": "Name a primary colour.", "input": "", "output": "Blue."}
G3 = {"instruction": "What is 7 times 6?", "input": "", "output": "42"}


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), "utf-8")
    return path


def ten_mb_record(tmp_path: Path) -> Path:
    huge = {
        "id": "huge",
        "instruction": "Repeat the word.",
        "input": "",
        "output": "word " * 2_000_000,
    }
    return _jsonl(tmp_path / "ten_mb_record.jsonl", [G1, huge, G3])


def long_lines(tmp_path: Path) -> Path:
    rows = [
        {"instruction": "Summarise: " + "lorem ipsum " * 250_000, "input": "", "output": "Short."},
        {"instruction": "Spell a long word.", "input": "", "output": "a" * 1_000_000},
    ]
    return _jsonl(tmp_path / "long_lines.jsonl", rows)


def ten_mb_cell_csv(tmp_path: Path) -> Path:
    path = tmp_path / "ten_mb_cell.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerows(
            [["instruction", "output"], ["Repeat the word.", "word " * 2_000_000], ["Hi?", "Hi."]]
        )
    return path


GENERATORS = {f.__name__: f for f in (ten_mb_record, long_lines, ten_mb_cell_csv)}
BY_OUTCOME = {
    o: [c for c in CASES if c["outcome"] == o] for o in ("error", "file_error", "accepted")
}


def case_path(case: dict, tmp_path: Path) -> Path:
    if case.get("generate"):
        return GENERATORS[case["generate"]](tmp_path)
    return CORPUS / case["file"]


def forced_format(case: dict) -> str | None:
    args = case.get("args", [])
    return args[args.index("--format") + 1] if "--format" in args else None


def run_cli(capsys, args: list[str]) -> str:
    """Run the CLI, check it failed the way a user mistake should, and return the error line."""
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), err
    assert lines[0].startswith("tamis: error: ")
    return lines[0]


def independent_parse(path: Path) -> list:
    """The file's records as the standard library reads them (the oracle for round trips)."""
    data = path.read_bytes()
    if data.startswith(b"\x1f\x8b"):  # gzip, whatever the name says
        data = gzip.decompress(data)
    if path.suffix == ".jsonl":
        lines = [x.removeprefix(b"\xef\xbb\xbf") for x in data.split(b"\n")]
        return [json.loads(x.decode("utf-8")) for x in lines if x.strip()]
    if path.suffix == ".json":
        value = json.loads(data.decode("utf-8-sig"))
        return value["data"] if isinstance(value, dict) else value
    if path.suffix == ".csv":
        return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    return pq.read_table(path).to_pylist()


def test_the_corpus_is_complete():
    """At least 30 real inputs, every committed file has a case, and every case a file."""
    assert len(CASES) >= 30
    named = {c["file"] for c in CASES if c.get("file")}
    committed = {p.name for p in CORPUS.iterdir() if p.name not in ("cases.json", "make_corpus.py")}
    assert named == committed
    for case in CASES:
        assert case["outcome"] in BY_OUTCOME and case["what"]


STOPS = [(c, []) for c in BY_OUTCOME["error"] + BY_OUTCOME["file_error"]]
STOPS += [(c, ["--skip-bad"]) for c in BY_OUTCOME["file_error"]]  # a bad file is never skipped


@pytest.mark.parametrize(
    ("case", "skip"), STOPS, ids=lambda x: x["name"] if isinstance(x, dict) else " ".join(x)
)
def test_bad_input_stops_the_cli_with_one_line(tmp_path, capsys, case, skip):
    path = case_path(case, tmp_path)
    out = tmp_path / "out"
    error = run_cli(capsys, ["score", str(path), "-o", str(out), *skip, *case.get("args", [])])
    assert error.startswith(f"tamis: error: {path}{case['where']}: "), error
    assert case["message"] in error and case["fix"] in error, error
    assert not out.exists()  # stopped before anything was written


@pytest.mark.parametrize("case", BY_OUTCOME["error"], ids=lambda c: c["name"])
def test_skip_bad_sets_bad_records_aside_with_their_reason(tmp_path, capsys, case):
    path = case_path(case, tmp_path)
    skip = case["skip_bad"]
    if "error" in skip:  # nothing usable is left: still a clear stop
        args = [
            "score",
            str(path),
            "-o",
            str(tmp_path / "out"),
            "--skip-bad",
            *case.get("args", []),
        ]
        error = run_cli(capsys, args)
        assert error.startswith(f"tamis: error: {path}: ") and skip["error"] in error, error
        return
    data = read_dataset(path, forced_format(case), skip_bad=True)
    assert [b.reason for b in data.bad] == skip["reasons"]
    assert len(data.records) == skip["records"]
    assert data.n_input == case["input"]  # no record lost: kept + set aside == input
    assert sorted([r.index for r in data.records] + [b.index for b in data.bad]) == list(
        range(case["input"])
    )
    for bad in data.bad:
        assert bad.where.startswith(str(path)) and bad.detail
        # rejected.jsonl can hold it: valid UTF-8 JSON, whatever the input held
        line = jsonl_line(rejected_item(None, bad.where, bad.raw, bad.reason, bad.detail))
        assert json.loads(line.encode("utf-8"))["reason"] == bad.reason


@pytest.mark.parametrize("case", BY_OUTCOME["accepted"], ids=lambda c: c["name"])
def test_awkward_but_valid_input_round_trips_exactly(tmp_path, case):
    path = case_path(case, tmp_path)
    data = read_dataset(path, forced_format(case))
    assert data.bad == [] and len(data.records) == data.n_input == case["input"]
    if path.suffix != ".parquet":  # NaN != NaN: the Parquet case is checked below
        assert [r.raw for r in data.records] == independent_parse(path)
    if "responses" in case:
        assert [r.response for r in data.records] == case["responses"]
    for rec in data.records:
        output = rec.raw.get("output")
        if data.format == "alpaca" and isinstance(output, str):
            assert rec.response == output  # not stripped, normalised or re-encoded


def test_pandas_style_parquet_numbers(tmp_path):
    data = read_dataset(CORPUS / "parquet_numbers.parquet")
    assert [r.id for r in data.records[:2]] == ["1", "2"]  # 1.0 and 2.0 are integers
    assert data.records[2].hashed_id  # NaN: no id of its own
    assert [r.alpaca_fields for r in data.records] == [
        ("What is 7 times 6?", ""),  # an all-NaN input column is empty, not "nan"
        ("What is 2 plus 2?", ""),
        ("What is 9 minus 3?", ""),
    ]


def test_generated_giants_are_read_whole(tmp_path):
    data = read_dataset(ten_mb_record(tmp_path))
    assert len(data.records[1].response) == TEN_MB
    assert data.records[1].response == "word " * 2_000_000
    data = read_dataset(ten_mb_cell_csv(tmp_path))
    assert len(data.records[0].response) == TEN_MB


@pytest.mark.model
def test_run_with_skip_bad_over_the_whole_jsonl_corpus(tmp_path):
    """Every record-level JSON Lines case and the 10 MB record in one file, end to end: the
    counts add up to the input lines, every reason is recorded, and rejected.jsonl is valid UTF-8
    JSON Lines whatever the input held. Token counts need no forward pass, so this is quick."""
    parts = [
        (CORPUS / c["file"]).read_bytes()
        for c in BY_OUTCOME["error"]
        if c["file"].endswith(".jsonl") and "reasons" in c["skip_bad"] and not c.get("args")
    ]
    parts += [(CORPUS / "emoji_rtl.jsonl").read_bytes(), ten_mb_record(tmp_path).read_bytes()]
    path = tmp_path / "all.jsonl"
    path.write_bytes(b"".join(p if p.endswith(b"\n") else p + b"\n" for p in parts))
    n_lines = sum(1 for x in path.read_bytes().split(b"\n") if x.strip())
    out = tmp_path / "out"
    args = ["run", str(path), "-o", str(out), "--skip-bad", "--scorer", "tokens"]
    assert main([*args, "--by", "response_tokens", "--keep", "3", "-q"]) == 0
    selected = (out / "selected.jsonl").read_bytes().decode("utf-8").splitlines()
    rejected = [
        json.loads(x) for x in (out / "rejected.jsonl").read_bytes().decode("utf-8").splitlines()
    ]
    counts = json.loads((out / "manifest.json").read_text())["counts"]
    assert len(selected) == 3
    assert counts["input"] == n_lines == len(selected) + len(rejected)
    assert sum(counts["rejected_by_reason"].values()) == counts["rejected"] == len(rejected)
    assert len({r["where"] for r in rejected}) == len(rejected)  # each input line once
    assert {"bad_json", "bad_encoding", "not_an_object", "wrong_type", "missing_field"} <= set(
        counts["rejected_by_reason"]
    )
    [huge] = [r for r in rejected if r["id"] == "huge"]
    assert huge["reason"] == "too_long" and "characters" in huge["detail"]
    assert len(huge["record"]["output"]) == TEN_MB  # set aside whole, with its reason
