"""Inputs as corpora come and as notebooks hold them: compressed files (by suffix and by magic
bytes), folders and globs of part files, datasets.save_to_disk folders, OpenAI content parts,
and in-memory tables. Each must give exactly the records of the plain JSON Lines file, and a bad
record must be named by where it is (part and line, or row)."""

import bz2
import gzip
import json
import lzma

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tamis.base.errors import BadRecord, TamisError
from tamis.data.readers import read_again, read_dataset
from tamis.data.sources import source_sha256

ROWS = [
    {"instruction": f"Name a colour number {i}.", "input": "", "output": f"Colour {i} is blue."}
    for i in range(9)
]


def _text(rows) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _records(data):
    return [(r.id, r.prompt, r.response, r.raw) for r in data.records]


@pytest.fixture()
def plain(tmp_path):
    path = tmp_path / "plain.jsonl"
    path.write_bytes(_text(ROWS))
    return _records(read_dataset(path))


def _zstd(data: bytes, path) -> None:
    with pa.output_stream(str(path), compression="zstd") as f:
        f.write(data)


@pytest.mark.parametrize(
    "name, pack",
    [
        ("d.jsonl.gz", gzip.compress),
        ("d.jsonl.bz2", bz2.compress),
        ("d.jsonl.xz", lzma.compress),
        ("d.jsonl.zst", None),
        ("d.jsonl", gzip.compress),  # gzip that its name does not announce: the magic bytes
    ],
)
def test_compressed_json_lines_read_like_the_plain_file(tmp_path, plain, name, pack):
    path = tmp_path / name
    if pack is None:
        _zstd(_text(ROWS), path)
    else:
        path.write_bytes(pack(_text(ROWS)))
    data = read_dataset(path)
    assert _records(data) == plain
    assert data.records[4].where == f"{path}:5"  # the line inside the compressed file


def test_compressed_csv_and_json(tmp_path, plain):
    import csv
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(ROWS[0]))
    writer.writeheader()
    writer.writerows(ROWS)
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(buf.getvalue().encode()))
    _zstd(json.dumps(ROWS).encode(), tmp_path / "d.json.zst")
    for name in ("d.csv.gz", "d.json.zst"):
        assert [r[:3] for r in _records(read_dataset(tmp_path / name))] == [p[:3] for p in plain]


def test_damaged_or_unknown_compressed_files_are_clear_errors(tmp_path):
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(gzip.compress(_text(ROWS))[:-30])
    with pytest.raises(TamisError, match=r"cut.jsonl.gz: the gzip data is damaged or cut short"):
        read_dataset(cut)
    odd = tmp_path / "d.txt.gz"
    odd.write_bytes(gzip.compress(b"hello"))
    with pytest.raises(TamisError, match=r"unsupported file type '.txt' inside the gzip file"):
        read_dataset(odd)


def test_a_folder_of_parquet_parts_and_a_glob(tmp_path, plain):
    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(pa.Table.from_pylist(ROWS[:4]), parts / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(ROWS[4:]), parts / "part-00001.parquet")
    (parts / "_SUCCESS").write_text("")  # Spark's marker: not data
    (parts / ".part-00000.parquet.crc").write_text("x")
    for source in (parts, parts / "*.parquet"):
        data = read_dataset(source)
        assert _records(data) == plain
        assert data.records[5].where == f"{parts / 'part-00001.parquet'}: row 1"
        assert [r.index for r in data.records] == list(range(9))  # across the parts


def test_json_lines_parts_with_a_bad_record_name_the_part_and_line(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.jsonl").write_bytes(_text(ROWS[:3]))
    bad = {"instruction": "No answer here.", "input": ""}
    (parts / "b.jsonl.gz").write_bytes(gzip.compress(_text([ROWS[3], bad])))
    (parts / "c.jsonl").write_bytes(b"")  # an empty part holds no record
    with pytest.raises(BadRecord, match=r"b.jsonl.gz:2: field 'output' is missing"):
        read_dataset(parts)
    data = read_dataset(parts, skip_bad=True)
    assert len(data.records) == 4 and [b.where for b in data.bad] == [f"{parts / 'b.jsonl.gz'}:2"]


def test_folders_tamis_cannot_read_say_why(tmp_path):
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    (mixed / "a.jsonl").write_bytes(_text(ROWS[:2]))
    pq.write_table(pa.Table.from_pylist(ROWS[2:]), mixed / "b.parquet")
    with pytest.raises(TamisError, match="parts of several formats"):
        read_dataset(mixed)
    splits = tmp_path / "dd"
    (splits / "train").mkdir(parents=True)
    (splits / "dataset_dict.json").write_text('{"splits": ["train"]}')
    (splits / "train" / "state.json").write_text("{}")
    with pytest.raises(TamisError, match=r"a saved DatasetDict with splits train; point"):
        read_dataset(splits)
    with pytest.raises(TamisError, match="no file matches this pattern"):
        read_dataset(tmp_path / "none" / "*.parquet")


def test_a_datasets_save_to_disk_folder(tmp_path, plain):
    datasets = pytest.importorskip("datasets")
    folder = tmp_path / "saved"
    datasets.Dataset.from_list(ROWS).save_to_disk(str(folder))
    data = read_dataset(folder)
    assert _records(data) == plain
    assert data.records[0].where.endswith(".arrow: row 0")


def test_a_folder_is_hashed_over_its_parts_and_read_again(tmp_path):
    parts = tmp_path / "parts"
    parts.mkdir()
    (parts / "a.jsonl").write_bytes(_text(ROWS[:5]))
    (parts / "b.jsonl").write_bytes(_text(ROWS[5:]))
    before = source_sha256(parts)
    info = {"path": str(parts), "sha256": before, "format": "alpaca"}
    assert len(read_again(info, False).records) == 9
    (parts / "c.jsonl").write_bytes(_text([{**ROWS[0], "output": "Another answer."}]))
    assert source_sha256(parts) != before
    with pytest.raises(TamisError, match="changed since it was scored"):
        read_again(info, False)


def test_in_memory_tables_read_like_the_file(plain):
    pd = pytest.importorskip("pandas")
    datasets = pytest.importorskip("datasets")
    for table in (
        ROWS,
        pd.DataFrame(ROWS),
        datasets.Dataset.from_list(ROWS),
        pa.Table.from_pylist(ROWS),
    ):
        data = read_dataset(table)
        assert _records(data) == plain, type(table).__name__
        assert data.records[2].where == "row 2"


def test_a_bad_row_in_memory_is_named_by_its_row():
    pd = pytest.importorskip("pandas")
    rows = [dict(r) for r in ROWS]
    rows[6]["output"] = None
    with pytest.raises(BadRecord, match=r"^row 6: field 'output' is missing"):
        read_dataset(pd.DataFrame(rows))
    data = read_dataset(pd.DataFrame(rows), skip_bad=True)
    assert [(b.where, b.reason) for b in data.bad] == [("row 6", "missing_field")]
    with pytest.raises(TamisError, match="cannot read a int: give a file path or URL"):
        read_dataset(42)


def test_openai_content_parts_read_like_plain_text():
    def chat(user, answer):
        return {
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": answer},
            ]
        }

    text = read_dataset([chat("Hi there", "Hello!")]).records[0]
    parts = read_dataset(
        [chat([{"type": "text", "text": "Hi there"}], [{"type": "output_text", "text": "Hello!"}])]
    ).records[0]
    assert (parts.prompt, parts.response) == (text.prompt, text.response)
    two = read_dataset(
        [chat([{"type": "text", "text": "Hi"}, {"type": "text", "text": "there"}], "Yo")]
    )
    assert two.records[0].prompt[0].content == "Hi\nthere"
    image = chat([{"type": "image_url", "image_url": {"url": "x.png"}}], "A cat.")
    data = read_dataset([chat("Hi", "Hello!"), image], skip_bad=True)
    assert [(b.where, b.reason) for b in data.bad] == [("row 1", "unsupported_content")]
    assert "a 'image_url' part; tamis scores text only" in data.bad[0].detail


def test_parquet_output_keeps_the_input_columns_and_types(tmp_path):
    from tamis.cli import main

    rows = [{**r, "n": i, "tags": ["a", str(i)]} for i, r in enumerate(ROWS)]
    rows[4] = {**rows[4], "output": "word " * 30}
    data = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist(rows), data)
    out = tmp_path / "out"
    args = ["run", str(data), "-o", str(out), "--scorer", "response_words", "-q"]
    assert main([*args, "--by", "response_words", "--keep", "3", "--output-format", "parquet"]) == 0
    selected = pq.read_table(out / "selected.parquet")
    assert selected.schema == pq.read_schema(data).remove_metadata()  # int64, list<string>
    assert selected.num_rows == 3 and 4 in selected.column("n").to_pylist()  # the longest
    rejected = pq.read_table(out / "rejected.parquet").to_pylist()
    assert len(rejected) == 6 and {r["tamis_reason"] for r in rejected} == {"ranked_out"}
    assert rejected[0]["tamis_where"] == f"{data}: row 0" and rejected[0]["tags"] == ["a", "0"]
    assert not (out / "selected.jsonl").exists()
    assert (out / "report.html").stat().st_size > 1000  # the report reads rejected.parquet
    assert main(["select", str(out), "--by", "response_words", "--keep", "3", "-q"]) == 0
    assert (out / "selected.jsonl").is_file() and not (out / "selected.parquet").exists()


def _bad_rows():
    rows = [dict(r) for r in ROWS]
    rows[6]["output"] = None  # a missing answer, the 7th row
    return rows


def _as_file(tmp_path, form):
    rows = _bad_rows()
    if form == "gzip":
        path = tmp_path / "d.jsonl.gz"
        path.write_bytes(gzip.compress(_text(rows)))
        return path, f"{path}:7"
    if form == "zstd":
        path = tmp_path / "d.jsonl.zst"
        _zstd(_text(rows), path)
        return path, f"{path}:7"
    parts = tmp_path / "parts"
    parts.mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:4]), parts / "part-00000.parquet")
    pq.write_table(pa.Table.from_pylist(rows[4:]), parts / "part-00001.parquet")
    return parts, f"{parts / 'part-00001.parquet'}: row 2"


def _in_memory(form):
    rows = _bad_rows()
    if form == "list":
        return rows
    if form == "arrow":
        return pa.Table.from_pylist(rows)
    if form == "pandas":
        return pytest.importorskip("pandas").DataFrame(rows)
    return pytest.importorskip("datasets").Dataset.from_list(rows)


@pytest.mark.parametrize(
    "form", ["gzip", "zstd", "parquet parts", "list", "arrow", "pandas", "datasets"]
)
def test_a_bad_row_is_named_by_its_position_in_every_form(tmp_path, form):
    if form in ("gzip", "zstd", "parquet parts"):
        source, where = _as_file(tmp_path, form)
    else:
        source, where = _in_memory(form), "row 6"
    with pytest.raises(BadRecord) as stop:
        read_dataset(source)
    assert str(stop.value).startswith(f"{where}: ") and "'output'" in str(stop.value)
    data = read_dataset(source, skip_bad=True)
    assert [b.where for b in data.bad] == [where] and len(data.records) == 8
