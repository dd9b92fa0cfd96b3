"""One meaning per option: an option that several commands share has the same default, choices
and help text in each, unless DIFFERENT_ON_PURPOSE says why it differs; docs/guide.md's table of
shared options lists every one of them."""

from __future__ import annotations

import argparse

from conftest import ROOT

from tamis.cli.main import build_parser

# Options whose name is shared but whose role depends on the command, and why.
DIFFERENT_ON_PURPOSE = {
    "--model": "the model of the command's role: the scorer (smollm2-135m) in score, run and "
    "clear; the model trained or evaluated (gemma3-270m) in train and eval",
    "--keep": "clear keeps the most confident records as they are (0.8 of them); select and run "
    "keep the selection's budget (all, by default)",
    "--method": "train: what is trained (full, lora, prompt-tuning); select and run: how the "
    "budget is filled (top, s2l, diverse)",
    "--seed": "each command seeds what it draws",
    "--resume": "train continues from its checkpoint only when asked; score and run always "
    "reuse their cache (the flag only states it)",
    "--out": "transfer and report write a file into the folder",
    "--clusters": "select only reads trajectories; score and run also compute --scorer cluster",
}


def shared_options(parser: argparse.ArgumentParser) -> dict[str, list[tuple[str, tuple]]]:
    """Every option string used by two commands or more: [(command, (default, choices, help))]."""
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    found: dict[str, list[tuple[str, tuple]]] = {}
    for command, p in sub.choices.items():
        for action in p._actions:
            if action.dest == "help" or not action.option_strings:
                continue
            meaning = (repr(action.default), tuple(action.choices or ()), action.help)
            found.setdefault(action.option_strings[-1], []).append((command, meaning))
    return {option: uses for option, uses in found.items() if len(uses) > 1}


def differences(parser: argparse.ArgumentParser) -> list[str]:
    """The shared options (not in DIFFERENT_ON_PURPOSE) that differ between commands."""
    return [
        f"{option}: " + "; ".join(f"{command} {meaning}" for command, meaning in uses)
        for option, uses in shared_options(parser).items()
        if option not in DIFFERENT_ON_PURPOSE and len({meaning for _, meaning in uses}) > 1
    ]


def test_a_shared_option_means_the_same_in_every_command():
    assert differences(build_parser()) == []


def test_the_check_finds_an_option_that_differs():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers()
    sub.add_parser("a").add_argument("--max-tokens", type=int, default=2048, help="context")
    sub.add_parser("b").add_argument("--max-tokens", type=int, default=1024, help="context")
    assert [d.split(":")[0] for d in differences(parser)] == ["--max-tokens"]


def test_the_guide_lists_every_option_shared_beyond_score_select_and_run():
    # run is score then select, so the options of those three are shared by construction
    guide = (ROOT / "docs" / "guide.md").read_text(encoding="utf-8")
    table = guide.split("## Options shared by the commands", 1)[1].split("\n## ", 1)[0]
    family = {"score", "select", "run"}
    missing = [
        option
        for option, uses in shared_options(build_parser()).items()
        if not {command for command, _ in uses} <= family and f"`{option}`" not in table
    ]
    assert missing == []
