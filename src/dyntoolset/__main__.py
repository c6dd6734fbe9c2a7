"""``python -m dyntoolset``: the command line."""

import sys

from dyntoolset.cli import main

sys.exit(main())
