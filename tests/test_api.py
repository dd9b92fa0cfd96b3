"""The notebook API and the console with the real bundled model: the same records given as a
file, a gzip file, a zstd file, a folder of Parquet parts (to the command) and as a DataFrame, a
datasets.Dataset or a list of dicts (to tamis.curate) get the same scores and decisions; the
README's notebook example runs as written; a run prints no library warning."""

import gzip
import json
import os
import re
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import DEMO, ROOT

import tamis
from tamis.base.errors import TamisError
from tamis.cli import main

pd = pytest.importorskip("pandas")
datasets = pytest.importorskip("datasets")

N = 12


@pytest.fixture(scope="module")
def rows():
    with DEMO.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f][:N]


@pytest.fixture(scope="module")
def by_command(rows, tmp_path_factory):
    """``{input kind: (ppl by id, kept ids)}`` of ``tamis run`` on each file form, one cache."""
    tmp = tmp_path_factory.mktemp("forms")
    text = "".join(json.dumps(r) + "\n" for r in rows).encode()
    (tmp / "d.jsonl").write_bytes(text)
    (tmp / "d.jsonl.gz").write_bytes(gzip.compress(text))
    with pa.output_stream(str(tmp / "d.jsonl.zst"), compression="zstd") as f:
        f.write(text)
    (tmp / "parts").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:5]), tmp / "parts" / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[5:]), tmp / "parts" / "part-1.parquet")
    found = {}
    for name in ("d.jsonl", "d.jsonl.gz", "d.jsonl.zst", "parts"):
        out = tmp / f"out-{name}"
        args = ["run", str(tmp / name), "-o", str(out), "--keep", "0.5", "-q"]
        assert main([*args, "--cache", str(tmp / "nll.sqlite")]) == 0
        scores = pq.read_table(out / "scores.parquet").to_pylist()
        kept = [r["instruction"] for r in map(json.loads, (out / "selected.jsonl").open())]
        found[name] = ({r["id"]: r["ppl"] for r in scores}, sorted(kept), tmp / "nll.sqlite")
    return found


def test_every_file_form_gets_the_same_scores_and_decisions(by_command):
    first = by_command["d.jsonl"]
    for name, (ppl, kept, _) in by_command.items():
        assert ppl == first[0] and kept == first[1], name
    assert len(first[1]) == N // 2


def test_tables_in_memory_get_the_scores_and_decisions_of_the_command(rows, by_command):
    ppl, kept, cache = by_command["d.jsonl"]
    for table in (rows, pd.DataFrame(rows), datasets.Dataset.from_list(rows)):
        result = tamis.curate(table, keep=0.5, cache=cache, progress=False)
        assert type(result.selected) is type(table) and type(result.scores) is type(table)
        scored = (
            result.scores
            if isinstance(table, list)
            else result.scores.to_list()
            if (isinstance(table, datasets.Dataset))
            else result.scores.to_dict("records")
        )
        assert sorted(r["ppl"] for r in scored) == sorted(ppl.values())
        assert all(r["tamis_status"] == "ok" for r in scored)
        chosen = result.selected if isinstance(table, list) else (
            result.selected.to_list() if isinstance(table, datasets.Dataset)
            else result.selected.to_dict("records"))  # fmt: skip
        assert sorted(r["instruction"] for r in chosen) == kept
        assert "ppl" not in chosen[0]  # the kept rows are the user's own columns
        dropped = result.rejected if isinstance(table, list) else (
            result.rejected.to_list() if isinstance(table, datasets.Dataset)
            else result.rejected.to_dict("records"))  # fmt: skip
        assert len(dropped) == N - len(kept) and all(r["reason"] for r in dropped)


def test_nothing_rejected_gives_an_empty_rejected_table_of_the_same_kind(rows, by_command):
    # the guide's example: a token budget larger than the data keeps every record
    cache = by_command["d.jsonl"][2]
    keep_all = tamis.Selection(by="ppl", keep_tokens=200_000, drop_junk_above=float("inf"))
    for table in (rows, pd.DataFrame(rows), datasets.Dataset.from_list(rows)):
        result = tamis.curate(table, selection=keep_all, cache=cache, progress=False)
        assert len(result.selected) == N and len(result.rejected) == 0, type(table)
        if not isinstance(table, list):
            columns = result.rejected.columns if isinstance(table, pd.DataFrame) else (
                result.rejected.column_names)  # fmt: skip
            assert {"reason", "detail", "ppl"} <= set(columns)


def test_scores_come_back_as_columns_of_the_users_table(rows, by_command):
    cache = by_command["d.jsonl"][2]
    df = pd.DataFrame(rows).iloc[:8]
    df.loc[3, "output"] = None  # a bad row
    scored = tamis.score(df, scorers=["ppl", "tokens"], cache=cache, skip_bad=True, progress=False)
    assert list(scored.columns[: len(df.columns)]) == list(df.columns)
    assert {"ppl", "prompt_tokens", "response_tokens", "tamis_status"} <= set(scored.columns)
    assert scored["tamis_status"].tolist()[3] == "missing_field"
    assert pd.isna(scored["ppl"].iloc[3]) and scored["ppl"].drop(index=3).notna().all()
    with pytest.raises(TamisError, match="already has column"):
        tamis.score(scored, scorers=["ppl"], cache=cache, skip_bad=True, progress=False)
    with pytest.raises(TamisError, match="unknown option"):
        tamis.score(df, scorers=["ppl"], batchsize=4)
    # a path gives its records back as a list of dicts, with the scores
    from_file = tamis.score(cache.parent / "d.jsonl.gz", scorers="ppl", cache=cache, progress=False)
    assert [r["instruction"] for r in from_file] == [r["instruction"] for r in rows]
    assert sorted(r["ppl"] for r in from_file) == sorted(by_command["d.jsonl"][0].values())


def test_the_readme_notebook_example_runs_as_written(tmp_path, monkeypatch):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Python (notebooks)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(ROOT)
    scope: dict = {}
    exec(compile(code, "README.md", "exec"), scope)
    train = scope["train"]
    assert len(train) == 10 and train[0]["messages"][1]["role"] == "assistant"


def test_a_run_prints_no_library_warning(tmp_path, rows):
    # The demo command on a slice of the demo data, in a fresh process with every warning shown.
    data = tmp_path / "demo.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:10]))
    env = {**os.environ, "PYTHONWARNINGS": "default"}
    done = subprocess.run(
        [sys.executable, "-m", "tamis", "run", str(data), "-o", str(tmp_path / "out"), "--keep",
         "0.5"],
        capture_output=True, text=True, env=env, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    output = done.stdout + done.stderr
    assert "Warning" not in output and "deprecated" not in output, output[-3000:]
    assert "kept 5 of 10" in done.stderr
