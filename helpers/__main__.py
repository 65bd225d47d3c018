"""`python -m helpers <command>`: the command line (helpers/cli.py). Used by no notebook."""

import sys

from .cli import main

sys.exit(main())
