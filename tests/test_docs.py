"""The docs stay true to the code: every ``tamis`` command line in the README and docs/ parses with
tamis' own parser (an option renamed or removed fails here), and every ``tamis`` import in their
Python examples resolves. The README's notebook example runs in full in test_api."""

import contextlib
import io
import re
import shlex

import pytest
from conftest import ROOT

from tamis.cli.main import build_parser

BLOCK = re.compile(r"```(\w*)\n(.*?)```", re.S)
COMMAND = re.compile(r"(?:^|\s|/)tamis\s+(\S.*)$")
IMPORT = re.compile(r"^(?:from tamis[\w.]* import (?:\([^)]*\)|[^\n]+)|import tamis[\w.]*)", re.M)
DOCS = ["README.md", *sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md"))]


def blocks(name: str, languages: tuple[str, ...]) -> list[str]:
    text = (ROOT / name).read_text(encoding="utf-8")
    return [body for lang, body in BLOCK.findall(text) if lang in languages]


def command_lines(name: str) -> list[str]:
    """The arguments after ``tamis`` of each command line in the shell blocks (continuations
    joined, comments and pipes cut off)."""
    out = []
    for body in blocks(name, ("sh", "bash", "console", "")):
        for line in re.sub(r"\\\n\s*", " ", body).splitlines():
            line = line.strip().removeprefix("$ ").split(" #")[0]
            found = COMMAND.search(line)
            if found and not line.startswith(("pip", "uv ")):
                out.append(re.split(r"\s(?:\||&&|>|2>)", found.group(1))[0].strip())
    return out


@pytest.mark.parametrize("name", DOCS)
def test_every_command_line_in_the_docs_parses(name):
    parser = build_parser()
    failures = []
    for line in command_lines(name):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parser.parse_args(shlex.split(line))
        except SystemExit as e:
            if e.code:
                failures.append(f"tamis {line}: {err.getvalue().strip().splitlines()[-1]}")
    assert not failures, "\n".join(failures)


def test_the_docs_have_commands_to_check():
    # the extraction itself: a change of the docs' code-block style must not silence the test
    assert len(command_lines("README.md")) >= 5
    assert sum(len(command_lines(n)) for n in DOCS) >= 40
    assert "run data.jsonl -o out/ --keep 0.5 --by ppl" in command_lines("README.md")


def test_a_wrong_option_in_a_command_line_is_caught():
    with pytest.raises(SystemExit), contextlib.redirect_stderr(io.StringIO()):
        build_parser().parse_args(shlex.split("run data.jsonl -o out --keep-fraction 0.5"))


@pytest.mark.parametrize("name", DOCS)
def test_every_tamis_import_in_the_docs_resolves(name):
    for body in blocks(name, ("python",)):
        for statement in IMPORT.findall(body):
            exec(statement, {})  # an ImportError names the module or the name that moved
