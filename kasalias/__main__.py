"""``python -m kasalias``."""

import sys

from kasalias.cli import main

sys.exit(main())
