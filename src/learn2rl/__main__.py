"""``python -m learn2rl``: the ``learn2rl`` command."""

import sys

from learn2rl.cli import main

sys.exit(main())
