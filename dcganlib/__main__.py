"""Entry point for ``python -m dcganlib``."""

import sys

from .cli import main

sys.exit(main())
