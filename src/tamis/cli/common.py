"""What every command shares: the help formatter and the options that mean the same everywhere."""

from __future__ import annotations

import argparse
from dataclasses import fields
from pathlib import Path

from tamis.data.records import FORMATS
from tamis.data.remote import data_arg
from tamis.engines.ray import ENGINES, RayOptions

DATA_HELP = "instruction data, as for tamis score"


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
    p.add_argument("--device", default="cpu", help="cpu or cuda")


def add_format(p) -> None:
    """``--format``, as ``tamis score`` reads it (None: detected from the first record)."""
    p.add_argument("--format", choices=FORMATS, default=None, help="as for tamis score")


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
