"""`python -m handler`: the operator CLI (see `handler.cli`). Not on the Lambda path."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
