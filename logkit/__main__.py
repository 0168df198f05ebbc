"""`python -m logkit`."""

import sys

from logkit.cli import main

sys.exit(main())
