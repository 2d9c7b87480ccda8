"""A Lambda container's life up to its first event, in a new process: init, then one invocation.

Copied into the benchmark's task directory (beside the deployment package's `handler/` and the
baseline's module) and run as `python bootstrap.py SIDE EVENT_FILE RESULT_FILE`; it imports only
the standard library before the side's own init, as Lambda's runtime does before it imports the
function's module. What it writes to RESULT_FILE (JSON): the wall-clock times (`time.time()`,
which the parent's clock shares) when init ended and when the first event's handler returned,
the process's CPU time (every thread's) then, and the handler's answer.
"""

import importlib
import json
import os
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

ACCOUNT_ID = "123456789012"
BUDGET_SECONDS = 300.0


class Context:
    """The part of Lambda's context object the handler reads: its ARN, a request id, time left."""

    def __init__(self) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "traffic-mirror")
        region = os.environ.get("AWS_REGION", "us-east-1")
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{self.function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.monotonic() + BUDGET_SECONDS

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


Handler = Callable[[Any, Any], Any]


def init(side: str) -> Handler | None:
    """What Lambda's init phase runs for each side (None: a reference with no event)."""
    if side == "ours":
        handler: Handler = importlib.import_module("handler.app").lambda_handler
        return handler
    if side == "baseline":
        # The post's module creates its client at import (`new AWS.EC2()`); the port does it here.
        baseline = importlib.import_module("baseline")
        ec2 = baseline.make_client(os.environ["AWS_REGION"])
        return lambda event, _context: baseline.naive_handler(event, ec2)
    if side == "boto3":  # reference: what every boto3 function pays before its own code
        importlib.import_module("boto3")
        return None
    if side == "python":  # reference: the interpreter alone
        return None
    raise SystemExit(f"unknown side {side!r}")


def main(side: str, event_file: str, result_file: str) -> None:
    handler = init(side)
    initialised = time.time()
    answer = None
    if handler is not None:
        with open(event_file, encoding="utf-8") as file:  # the runtime's Next call hands it over
            event = json.load(file)
        answer = handler(event, Context())
    ended, cpu = time.time(), time.process_time()
    with open(result_file, "w", encoding="utf-8") as file:
        json.dump({"initialised": initialised, "ended": ended, "cpu": cpu, "answer": answer}, file)


if __name__ == "__main__":
    main(*sys.argv[1:4])
