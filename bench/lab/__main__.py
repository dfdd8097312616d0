"""`python -m bench.lab`: see `bench.lab.cli`."""

import sys

from bench.lab.cli import main

sys.exit(main())
