# PYTHON_ARGCOMPLETE_OK  (argcomplete's global completion looks for this in the entry point's module)
"""The operator CLI: `traffic-mirror` (the console script), `python -m traffic_mirror.cli`, or
`python -m handler` from a checkout.

Four commands, against a real account (`--profile` or the default credential chain) or any
endpoint (`--endpoint-url` or AWS_ENDPOINT_URL, e.g. the demo's embedded AWS, `make playground`),
each with `--format json` (docs/cli-json.md) and `--quiet`:

- `plan`: read-only; for every ENI, what the automation would do and why, and what it would cost.
- `coverage`: the share of in-scope ENIs that are mirrored, by VPC and AZ, and why the others
  are not (`--format json|html`, `--output FILE`, `--min PCT`, `--fail-if-empty`).
- `sweep`: the scheduled sweep's reconciliation; a dry run unless `--apply`.
- `release`: delete the automation's own sessions (its ManagedBy tag) and no other, through the
  handler's tear-down path; a dry run unless `--apply`.

The modules, each named for what it holds: `entry` (arguments, suggestions, completion,
dispatch), `exits` (the exit codes), `aws` (session, fail-fast retries shown in the spinner,
one-line errors), `context` (what a command is given, and the loop over accounts), `read` (one
read-only pass), `render` (text that never loses a character), `reasons` (reasons without what
is shown beside them), `coverage` (the coverage model and its JSON), `documents` (the JSON
documents' common parts), `html_report` (the coverage page, from the JSON), `cost`, and one
module per command (`plan_cmd`, `coverage_cmd`, `sweep_cmd`, `release_cmd`).

This package imports nothing heavy until a command runs, and nothing on the Lambda path imports
it; what it shares with the component (region names, the settings' flags) is in `common/`.
"""

from collections.abc import Sequence
from typing import Any


def main(argv: Sequence[str] | None = None, **kwargs: Any) -> int:
    """Run one command and return its exit code (see `entry.main`)."""
    from .entry import main as run

    return run(argv, **kwargs)
