"""What every command shares: the help formatter and the options that mean the same everywhere."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from tamis.data.records import FORMATS, parse_field
from tamis.data.remote import data_arg
from tamis.engines.ray import ENGINES, RayOptions
from tamis.model.loading import PRECISIONS
from tamis.model.render import TEMPLATES
from tamis.scorers.score import DEFAULT_MAX_TOKENS

DATA_HELP = "instruction data, as for tamis score"
QUIET_HELP = "no progress bars and no summary"
FRESH_HELP = (
    "start over: discard what an earlier run left in DIR (score cache and shards; for train its "
    "checkpoints, model and logs)"
)
CACHE_HELP = (
    "score cache file (default: DIR/cache/nll.sqlite); share it between runs and commands to "
    "reuse scores"
)
# One text per shared option: tests/test_options.py fails when a command words or defaults one
# differently, and docs/guide.md's table of shared options says the same.
SHARED_HELP = {
    "format": "input format (default: detected from the first record)",
    "field": "read tamis' FIELD (instruction, input, output, prompt, response, messages, id...) "
    "from your COLUMN, e.g. --field instruction=question --field output=answer; repeatable",
    "id_field": "the column that holds each record's own id (default: id; without one, a hash "
    "of the content names the record)",
    "template": "how records become model input. auto: the model's chat template if it has one, "
    "else alpaca (the papers' Alpaca prompt); where two models must read the same text "
    "(predict-loss), alpaca unless both have the same chat template",
    "skip_bad": "set malformed records aside with their reason (rejected.jsonl; skipped.jsonl "
    "for train, eval.json for eval) instead of stopping at the first one",
    "max_tokens": "context limit per record, in tokens: a longer prompt is cut from the left "
    "(flagged 'truncated'); a record whose response alone does not fit is set aside as "
    "'too_long'",
    "batch_size": "sequences per forward pass: records, or in clear and eval the sampled and "
    "generated answers",
    "device": "cpu or cuda",
    "precision": "auto: float32 on a CPU, bfloat16 on a GPU. bfloat16 on a CPU is 2.1-2.3x "
    "faster with avx512_bf16 or AMX (docs/performance.md), much slower without; scores are "
    "cached per precision; training in bfloat16 is mixed precision (float32 weights) and saves "
    "the model in bfloat16",
}


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default only when it says something (not None, False or already there)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        # `is`, not `in`: a default of 0 equals False and must still be shown.
        if action.default is None or action.default is False or "default" in text:
            return text
        if isinstance(action, argparse._StoreFalseAction):  # "--no-x (default: True)" misleads
            return text
        return super()._get_help_string(action)


def command(subparsers, name: str, **texts) -> argparse.ArgumentParser:
    """A subcommand's parser (``help``, ``description`` as given) with :class:`HelpFormatter`."""
    return subparsers.add_parser(name, formatter_class=HelpFormatter, **texts)


def add_data_and_out(p, data_help: str = DATA_HELP) -> None:
    """The positional ``DATA`` (a path or URL) and ``-o DIR`` of every command that reads data."""
    p.add_argument("data", metavar="DATA", type=data_arg, help=data_help)
    add_out(p)


def add_out(p) -> None:
    """``-o DIR``, the output folder."""
    p.add_argument("-o", "--out", required=True, type=Path, metavar="DIR", help="output folder")


def from_args(cls, args: argparse.Namespace, **given):
    """``cls(...)`` with every field that ``args`` has an option of the same name for
    (``--max-tokens`` gives ``max_tokens``), and ``given`` for the rest or in place of them."""
    taken = {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}
    return cls(**{**taken, **given})


def add_device(p) -> None:
    """``--device``: the same option, meaning and default in every command."""
    p.add_argument("--device", default="cpu", help=SHARED_HELP["device"])


def add_format(p) -> None:
    """``--format`` (None: detected from the first record), and the field mapping: ``--field``
    and ``--id-field`` both add (field, column) pairs to ``fields``."""
    p.add_argument("--format", choices=FORMATS, default=None, help=SHARED_HELP["format"])
    p.add_argument(
        "--field",
        dest="fields",
        action="append",
        type=parse_field,
        default=None,
        metavar="FIELD=COLUMN",
        help=SHARED_HELP["field"],
    )
    p.add_argument(
        "--id-field",
        dest="fields",
        action="append",
        type=lambda column: ("id", column),
        default=None,
        metavar="COLUMN",
        help=SHARED_HELP["id_field"],
    )


def add_quiet(p) -> None:
    """``-q``: no progress bars, no summary (commands with ``-v`` use ``add_verbosity``)."""
    p.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)


def add_reading(p, batch_size: bool = True) -> None:
    """How a model reads DATA, the same in every command: ``--format``, ``--template``,
    ``--skip-bad``, ``--max-tokens``, ``--batch-size``, ``--device`` and ``--precision``."""
    add_format(p)
    p.add_argument("--template", choices=TEMPLATES, default="auto", help=SHARED_HELP["template"])
    p.add_argument("--skip-bad", action="store_true", help=SHARED_HELP["skip_bad"])
    p.add_argument(
        "--max-tokens", type=int, default=DEFAULT_MAX_TOKENS, help=SHARED_HELP["max_tokens"]
    )
    if batch_size:
        p.add_argument("--batch-size", type=int, default=8, help=SHARED_HELP["batch_size"])
    add_device(p)
    p.add_argument("--precision", choices=PRECISIONS, default="auto", help=SHARED_HELP["precision"])


def add_ray_args(p) -> None:
    """The ``--engine`` option group of ``score``, ``run`` and ``clear``."""
    ray = p.add_argument_group("Ray engine (--engine ray)")
    ray.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="local: this process; ray: shards of --shard-records run by a pool of Ray "
        "actors, one model each (pip install 'tamis[ray]'), with the same results",
    )
    ray.add_argument(
        "--address",
        default=None,
        help="a running Ray cluster (e.g. ray://head:10001 or auto); default: start a local one",
    )
    ray.add_argument("--actors", type=int, default=1, help="actors in the pool (loaded models)")
    ray.add_argument("--cpus-per-actor", type=float, default=1.0, help="CPUs (and threads) each")
    ray.add_argument(
        "--gpus-per-actor", type=float, default=0.0, help="GPUs each (with --device cuda)"
    )
    ray.add_argument(
        "--shard-records",
        type=int,
        default=1000,
        help="records per shard: the unit of work, of output (OUT/shards/) and of resume",
    )


def ray_options(args) -> RayOptions:
    """:class:`RayOptions` from the parsed :func:`add_ray_args` options."""
    return RayOptions(
        address=args.address,
        actors=args.actors,
        cpus_per_actor=args.cpus_per_actor,
        gpus_per_actor=args.gpus_per_actor,
        shard_records=args.shard_records,
    )
