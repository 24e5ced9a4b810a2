"""``python -m rasteret_core.cli``: the same as the ``rasteret`` command."""

import sys

from rasteret_core.cli import main

sys.exit(main(prog_name="rasteret"))
