"""``python -m tamis`` is the ``tamis`` command."""

import sys

from tamis.cli import main

sys.exit(main())
