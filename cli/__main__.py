"""`python -m traffic_mirror.cli`: the operator CLI."""

import sys

from . import main

sys.exit(main())
