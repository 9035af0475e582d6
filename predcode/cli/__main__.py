"""``python -m predcode.cli``: the ``predcode`` command."""

import sys

from . import main

sys.exit(main())
