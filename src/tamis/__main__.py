"""``python -m tamis`` is the ``tamis`` command."""

import sys

from tamis.cli.main import main

sys.exit(main())
