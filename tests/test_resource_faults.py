"""Resource faults: a full disk, an unwritable output folder, a record too big for memory.

A full disk is made real, without mocks, by a file size limit (``RLIMIT_FSIZE``) on a child
process: its writes past the limit fail with EFBIG exactly where ENOSPC would strike. Tests run as
root, whom file permissions do not stop, so "unwritable" means a path whose parent is a file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from conftest import rows_from
from test_properties import scored_folder

from tamis.base.errors import TamisError
from tamis.base.files import write_json
from tamis.cli import main
from tamis.data.records import Message, Record
from tamis.engines.jobs import select_job
from tamis.model.render import TooLong, char_limit, encode
from tamis.select.selection import Selection

ROOT = Path(__file__).resolve().parent.parent


def one_error_line(capsys, args: list[str]) -> str:
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def run_limited(code: str, limit_bytes: int) -> subprocess.CompletedProcess:
    """Run ``code`` in a child Python whose files cannot grow past ``limit_bytes``."""
    prelude = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit_bytes}, resource.RLIM_INFINITY))\n"
    )
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )


def score_rows(n: int) -> list[dict]:
    return rows_from([float(n - i) for i in range(n)], repetition=0.0, cluster=0)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


@pytest.mark.parametrize("target", ["under_a_file", "is_a_file"])
def test_an_unwritable_output_folder_is_one_clear_line(tmp_path, capsys, target):
    data = tmp_path / "data.jsonl"
    data.write_text('{"instruction": "Name a colour.", "output": "Blue."}\n')
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    out = blocker / "out" if target == "under_a_file" else blocker
    err = one_error_line(capsys, ["score", str(data), "-o", str(out)])
    assert "cannot create the score cache here (Not a directory)" in err
    assert "choose another -o folder" in err
    assert blocker.read_text() == "a file, not a folder"


def test_select_into_an_unwritable_folder_is_one_clear_line(tmp_path, capsys):
    out = scored_folder(tmp_path, score_rows(4))
    (out / "selected.jsonl").mkdir()  # the rename onto it fails
    err = one_error_line(capsys, ["select", str(out), "--keep", "2", "-q"])
    assert f"{out / 'selected.jsonl'}: cannot write (Is a directory)" in err
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_leaves_the_earlier_selection_intact(tmp_path):
    out = scored_folder(tmp_path, score_rows(40))
    select_job(out, Selection(keep=30))
    before = snapshot(out)
    assert len(before["selected.jsonl"]) > 1000
    code = f"""
        from tamis.cli import main
        sys.exit(main(["select", {str(out)!r}, "--keep", "10", "-q"]))
    """
    child = run_limited(code, limit_bytes=1000)
    assert child.returncode == 2, child.stderr
    assert "Traceback" not in child.stderr and len(child.stderr.splitlines()) == 1
    assert "cannot write (File too large)" in child.stderr
    assert "the previous file, if any, is unchanged" in child.stderr
    assert snapshot(out) == before  # selected, rejected, manifest: all as they were
    assert select_job(out, Selection(keep=10))["counts"]["selected"] == 10  # and it recovers


def test_a_full_disk_while_caching_keeps_the_committed_scores(tmp_path):
    path = tmp_path / "nll.sqlite"
    code = f"""
        import numpy as np
        from tamis.model.cache import ScoreCache
        from tamis.base.errors import TamisError
        cache = ScoreCache({str(path)!r})
        cache.put("early", np.arange(4))
        cache.flush()
        cache.put("late", np.zeros(1_000_000))
        try:
            cache.flush()
        except TamisError as e:
            print(e)
            sys.exit(2)
    """
    child = run_limited(code, limit_bytes=256 * 1024)
    assert child.returncode == 2, child.stderr
    assert "disk may be full" in child.stdout and "the scores committed so far are kept" in (
        child.stdout
    )
    from tamis.model.cache import ScoreCache

    with ScoreCache(path) as cache:
        assert list(cache.get("early")) == [0, 1, 2, 3]
        assert cache.get("late") is None


def test_atomic_write_onto_a_folder_fails_cleanly(tmp_path):
    target = tmp_path / "manifest.json"
    target.mkdir()
    (target / "keep.txt").write_text("untouched")
    with pytest.raises(TamisError, match="cannot write"):
        write_json(target, {"a": 1})
    assert (target / "keep.txt").read_text() == "untouched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json"]


# ---- huge records: the context limit, not memory, decides --------------------------------------


@pytest.fixture(scope="module")
def tokenizer():
    """SmolLM2's tokenizer alone (no weights): from the converted folder the model fixture uses."""
    os.environ.setdefault("TAMIS_CACHE", str(ROOT / ".venv" / "tamis-test-cache"))
    from transformers import AutoTokenizer

    from tamis.model.loading import _converted_folder, model_sha256, resolve

    _, gguf = resolve("smollm2-135m")
    return AutoTokenizer.from_pretrained(_converted_folder(gguf, model_sha256(gguf)))


class Watched:
    """The tokenizer, noting the longest text it was asked to tokenize."""

    def __init__(self, tok):
        self.tok = tok
        self.longest = 0

    def __call__(self, text, **kwargs):
        self.longest = max(self.longest, len(text))
        return self.tok(text, **kwargs)

    def __getattr__(self, name):
        return getattr(self.tok, name)


def record(prompt: str, response: str) -> Record:
    return Record("x", [Message("user", prompt)], response, {}, "data.jsonl:1")


@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_a_10_mb_response_is_too_long_without_being_tokenized(tokenizer, template):
    watched = Watched(tokenizer)
    with pytest.raises(TooLong, match="the response has 10000000 characters, more than 2048"):
        encode(record("Repeat the word.", "word " * 2_000_000), watched, template, 2048)
    assert watched.longest < 1000


@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_a_10_mb_prompt_is_cut_before_it_is_tokenized(tokenizer, template):
    watched = Watched(tokenizer)
    e = encode(record("lorem ipsum " * 850_000, "Short."), watched, template, 2048)
    assert e.truncated and len(e.input_ids) == 2048
    assert watched.longest <= char_limit(tokenizer, 2048) < 400_000


@pytest.mark.parametrize("template", ["chat", "alpaca"])
def test_cutting_the_text_first_keeps_exactly_the_same_tokens(tokenizer, template):
    # A small context, so the prompt is well past the character limit yet cheap to encode whole.
    max_tokens = 64
    words = " ".join(f"word{i % 97} is {'very ' * (i % 3)}long" for i in range(4000))
    assert len(words) > char_limit(tokenizer, max_tokens)
    got = encode(record(words, "Short answer."), tokenizer, template, max_tokens)
    roomy = encode(record(words, "Short answer."), tokenizer, template, 10**6)  # nothing cut
    n_response = roomy.n_response
    keep = max_tokens - n_response
    assert got.input_ids == roomy.input_ids[roomy.n_prompt - keep :]
    assert (got.n_prompt, got.truncated) == (keep, True)


def test_the_character_limit_is_a_true_bound(tokenizer):
    """No text of more than char_limit characters fits: the densest text there is, one of the
    longest tokens repeated, still makes more than max_tokens tokens."""
    longest = max(tokenizer.get_vocab(), key=len)
    text = tokenizer.convert_tokens_to_string([longest] * 100)
    per_token = len(text) / len(tokenizer(text, add_special_tokens=False)["input_ids"])
    assert per_token * 2 <= char_limit(tokenizer, 1)
    assert json.dumps(char_limit(tokenizer, 2048)) == "331776"
