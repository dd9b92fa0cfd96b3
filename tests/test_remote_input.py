"""Input given as a URL: ``file://``, a real S3 endpoint (moto in server mode) and fsspec's
``memory://``. Every read gives the records of the same bytes read from a local file; every
failure is one line naming the URL. Only the last test loads the real small model.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DEMO

from tamis.base.errors import BadRecord, TamisError
from tamis.base.files import file_sha256
from tamis.cli import main
from tamis.data.readers import read_dataset
from tamis.engines.manifest import input_info

ROWS = [
    {"id": "a", "instruction": "Name a colour.", "output": "Blue."},
    {"id": "b", "instruction": "Name a fruit.", "input": "Red ones.", "output": "Apple."},
    {"id": "c", "instruction": "Say hi.", "output": "Hi!"},
]
JSONL = "".join(json.dumps(r) + "\n" for r in ROWS).encode()
BAD = JSONL.replace(b'"Apple."}', b'"Apple."')  # line 2 is cut short


def parquet_bytes(rows: list[dict]) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue().to_pybytes()


def same_records(remote, local, url: str, path: Path) -> None:
    """Same records, formats and positions; only the name in ``where`` differs."""
    assert remote.format == local.format
    assert [dataclasses.replace(r, where="") for r in remote.records] == [
        dataclasses.replace(r, where="") for r in local.records
    ]
    assert [r.where.replace(url, str(path)) for r in remote.records] == [
        r.where for r in local.records
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class S3:
    """A moto S3 server on 127.0.0.1; ``url(key)`` is what a user passes to tamis."""

    def __init__(self, port: int) -> None:
        import pyarrow.fs as pafs

        self.port = port
        self.query = f"?endpoint_override=127.0.0.1:{port}&scheme=http"
        self.fs = pafs.S3FileSystem(
            endpoint_override=f"127.0.0.1:{port}", scheme="http", allow_bucket_creation=True
        )
        self.fs.create_dir("tamis")

    def put(self, key: str, data: bytes) -> str:
        with self.fs.open_output_stream(f"tamis/{key}") as f:
            f.write(data)
        return self.url(key)

    def url(self, key: str, bucket: str = "tamis") -> str:
        return f"s3://{bucket}/{key}{self.query}"


@pytest.fixture(scope="module")
def s3():
    pytest.importorskip("moto", reason="pip install 'moto[server]' (the test extra)")
    from moto.server import ThreadedMotoServer

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(name, raising=False)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        try:
            yield S3(port)
        finally:
            server.stop()


def test_file_url_reads_as_the_local_path(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(JSONL)
    url = path.as_uri()
    remote, local = read_dataset(url), read_dataset(path)
    same_records(remote, local, url, path)
    assert remote.path == url and remote.sha256 == file_sha256(path)
    assert local.sha256 is None


def test_s3_jsonl_and_parquet_read_as_local_files(s3, tmp_path):
    for name, data in (("d.jsonl", JSONL), ("sub/d.parquet", parquet_bytes(ROWS))):
        path = tmp_path / Path(name).name
        path.write_bytes(data)
        url = s3.put(name, data)
        remote = read_dataset(url)
        same_records(remote, read_dataset(path), url, path)
        assert remote.sha256 == hashlib.sha256(data).hexdigest()
        assert remote.n_input == 3


def test_format_comes_from_the_url_path_not_its_query(s3):
    url = s3.put("UPPER.JSONL", JSONL)
    assert url.endswith("scheme=http") and read_dataset(url).format == "alpaca"
    with pytest.raises(TamisError, match=r"unsupported file type '\.txt'; use one of"):
        read_dataset(s3.url("data.txt"))  # refused before any download


def test_a_bad_line_names_the_url_and_the_line(s3, tmp_path, capsys):
    url = s3.put("bad.jsonl", BAD)
    with pytest.raises(BadRecord) as e:
        read_dataset(url)
    assert str(e.value).startswith(f"{url}:2: invalid JSON")
    assert "tamis-input" not in str(e.value)  # never the temporary copy
    kept = read_dataset(url, skip_bad=True)
    assert [b.where for b in kept.bad] == [f"{url}:2"] and len(kept.records) == 2
    # The CLI: one line, exit code 2, before any model is loaded.
    assert main(["score", url, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tamis: error: {url}:2: invalid JSON (Expecting ")
    assert err.endswith("; fix the line or use --skip-bad\n") and err.count("\n") == 1


def test_a_damaged_parquet_object_names_the_url(s3):
    url = s3.put("broken.parquet", b"PAR1 not really")
    with pytest.raises(TamisError) as e:
        read_dataset(url)
    assert str(e.value).startswith(f"{url}: not a readable Parquet file")
    assert "tamis-input" not in str(e.value)


@pytest.mark.parametrize("key, bucket", [("nope.jsonl", "tamis"), ("d.jsonl", "no-bucket")])
def test_a_missing_object_is_one_clear_line(s3, tmp_path, capsys, key, bucket):
    url = s3.url(key, bucket)
    assert main(["score", url, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"tamis: error: {url}: not found; check the bucket and key (or path) in the URL\n"
    )


def test_a_folder_is_not_a_file(s3):
    s3.put("folder.jsonl/part-0.jsonl", JSONL)
    with pytest.raises(TamisError, match="is a folder, not a file; name one file in it"):
        read_dataset(s3.url("folder.jsonl"))


def test_refused_credentials_are_explained(s3, monkeypatch):
    import moto.settings

    url = s3.put("d.jsonl", JSONL)
    monkeypatch.setattr(moto.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)  # check every key
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNKNOWN")
    with pytest.raises(TamisError) as e:
        read_dataset(url)
    text = str(e.value)
    assert text.startswith(f"{url}: access denied (") and "ACCESS_DENIED" in text
    assert "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" in text and "\n" not in text


def test_a_secret_in_the_url_is_never_printed(s3):
    url = s3.url("nope.jsonl").replace("s3://", "s3://AKIAX:hunter2@")
    with pytest.raises(TamisError) as e:
        read_dataset(url)
    assert "hunter2" not in str(e.value) and str(e.value).startswith("s3://AKIAX:***@tamis/")


def test_an_unreachable_server_is_explained(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    url = f"s3://tamis/d.jsonl?endpoint_override=127.0.0.1:{free_port()}&scheme=http"
    assert main(["score", url, "-o", str(tmp_path / "o")]) == 2  # S3 retries: ~6 s
    err = capsys.readouterr().err
    assert err.startswith(f"tamis: error: {url}: cannot connect (") and err.count("\n") == 1
    assert "check the host, the port and the network" in err


@pytest.mark.parametrize(
    "url, message",
    [
        ("foo://bucket/d.jsonl", "foo://bucket/d.jsonl: unknown URL scheme 'foo://'; use a local"),
        ("file://d.jsonl", "file://d.jsonl: not a valid URL (File URI cannot be relative"),
    ],
)
def test_an_unusable_url_is_one_clear_line(tmp_path, capsys, url, message):
    assert main(["score", url, "-o", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tamis: error: {message}") and err.count("\n") == 1


def test_a_full_disk_while_copying_is_one_clear_line(tmp_path, monkeypatch):
    from test_resource_faults import run_limited

    path = tmp_path / "big.jsonl"
    path.write_bytes(JSONL.replace(b"Blue.", b"Blue " * 200_000))  # about 1 MB
    temp = tmp_path / "tmp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    code = f"""
        from tamis.base.errors import TamisError
        from tamis.data.readers import read_dataset
        try:
            read_dataset({path.as_uri()!r})
        except TamisError as e:
            print(e)
        """
    done = run_limited(code, 100_000)  # writes past 100 kB fail as on a full disk
    assert done.stdout.startswith(f"{path.as_uri()}: cannot copy it to a temporary file in {temp}")
    assert "set TMPDIR to a larger disk" in done.stdout and done.stderr == ""
    assert list(temp.iterdir()) == []  # the partial copy is gone


@pytest.fixture()
def memory():
    fsspec = pytest.importorskip("fsspec")
    fs = fsspec.filesystem("memory")
    yield fs
    if fs.exists("/tamis-test"):
        fs.rm("/tamis-test", recursive=True)


def test_memory_url_through_fsspec(memory, tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("id,prompt,response\nx,Hi,Hello.\ny,Bye,See you.\n")
    url = "memory://tamis-test/d.csv"
    with memory.open("/tamis-test/d.csv", "wb") as f:
        f.write(path.read_bytes())
    same_records(read_dataset(url), read_dataset(path), url, path)
    with pytest.raises(TamisError, match=r"^memory://tamis-test/gone\.csv: not found; check"):
        read_dataset("memory://tamis-test/gone.csv")


def test_a_compressed_url_is_read_again_by_select(memory, tmp_path):
    # The local copy's name keeps only the last suffix (.gz): select and the report re-read the
    # object by the URL's own name, as the first read did.
    import gzip

    rows = [{"instruction": f"Name colour {i}.", "input": "", "output": "Blue. " * (i + 1)}
            for i in range(6)]  # fmt: skip
    url = "memory://tamis-test/d.jsonl.gz"
    with memory.open("/tamis-test/d.jsonl.gz", "wb") as f:
        f.write(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    out = tmp_path / "out"
    args = ["--scorer", "response_words", "--by", "response_words", "-q"]
    assert main(["run", url, "-o", str(out), *args, "--keep", "3"]) == 0
    assert main(["select", str(out), "--by", "response_words", "--keep", "2", "-q"]) == 0
    kept = [json.loads(line) for line in (out / "selected.jsonl").open()]
    assert [r["output"] for r in kept] == [rows[4]["output"], rows[5]["output"]]


def test_input_info_keeps_the_url_and_hashes_its_bytes(s3, tmp_path):
    url = s3.put("d.jsonl", JSONL)
    info = input_info(url, read_dataset(url))
    assert info == {
        "path": url,
        "sha256": hashlib.sha256(JSONL).hexdigest(),
        "format": "alpaca",
        "records": 3,
    }
    path = tmp_path / "d.jsonl"
    path.write_bytes(JSONL)
    local = input_info(str(path), read_dataset(path))
    assert local["path"] == str(path.resolve()) and local["sha256"] == info["sha256"]


@pytest.mark.model
def test_run_and_select_on_an_s3_url(s3, tmp_path, capsys):
    lines = DEMO.read_bytes().splitlines(keepends=True)[:5]
    url = s3.put("demo.jsonl", b"".join(lines))
    out = tmp_path / "out"
    assert main(["run", url, "-o", str(out), "--keep", "3", "-q"]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["input"]["path"] == url
    assert manifest["input"]["sha256"] == hashlib.sha256(b"".join(lines)).hexdigest()
    assert manifest["counts"]["selected"] == 3 and manifest["counts"]["rejected"] == 2
    inputs = [json.loads(x) for x in lines]
    selected = [json.loads(x) for x in (out / "selected.jsonl").read_text().splitlines()]
    assert len(selected) == 3 and all(r in inputs for r in selected)
    report = (out / "report.html").read_text()
    assert "Note:" not in report  # the report read the prompts back from the URL
    assert inputs[0]["instruction"] in report
    assert "<title>tamis run: demo.jsonl</title>" in report  # the object's name, not the query
    # select re-reads the URL and checks its hash
    assert main(["select", str(out), "--keep", "2", "-q"]) == 0
    assert len((out / "selected.jsonl").read_text().splitlines()) == 2
    s3.put("demo.jsonl", b"".join(lines[:4]))
    capsys.readouterr()
    assert main(["select", str(out), "--keep", "2", "-q"]) == 2
    assert capsys.readouterr().err == (
        f"tamis: error: {url}: the object changed since it was scored; run tamis score again\n"
    )


def test_read_again_checks_a_local_input_before_reading_it(tmp_path):
    from tamis.data.readers import read_again

    path = tmp_path / "data.jsonl"
    lines = DEMO.read_text(encoding="utf-8").splitlines(keepends=True)[:3]
    path.write_text("".join(lines), encoding="utf-8")
    info = input_info(path, read_dataset(path))
    again = read_again(info, skip_bad=False)
    assert [r.id for r in again.records] == [r.id for r in read_dataset(path).records]
    path.write_text("".join(lines[:2]), encoding="utf-8")
    with pytest.raises(TamisError, match="the file changed since it was scored"):
        read_again(info, skip_bad=False)
    path.unlink()
    with pytest.raises(TamisError, match="the scored input file is gone"):
        read_again(info, skip_bad=False)
