"""`python -m handler`: the operator CLI, kept for existing users (it lives in `traffic_mirror.cli`).

Not part of the Lambda archive: the function never runs this file.
"""

import sys

from traffic_mirror.cli import main

if __name__ == "__main__":
    sys.exit(main())
