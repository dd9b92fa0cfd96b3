"""The ``tamis`` command: one small module per command that parses its arguments, calls one job
of ``tamis.engines`` and prints its summary. Shared options (input, model, device, Ray, the help
formatter) live once in ``tamis.cli.common``.

May import anything in tamis; nothing imports it but ``tamis.__main__``.
"""

from tamis.cli.main import main

__all__ = ["main"]
