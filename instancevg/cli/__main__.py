"""``python -m instancevg.cli``: the `instancevg` command."""
import sys

from . import main

sys.exit(main())
