"""`make demo` end to end: the embedded AWS starts, the story plays, the server stops."""

import io
import os
import re
import socket
import time

from rich.console import Console

from scripts import demo


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    env_before = {k: os.environ.get(k) for k in (*demo.FAKE_ENV, *demo.DROPPED_ENV)}
    out = io.StringIO()
    started = time.monotonic()
    assert demo.main(Console(file=out, width=160, color_system=None)) == 0
    elapsed = time.monotonic() - started
    text = out.getvalue()

    # The launch step: the deployed patterns let the launches through, and only them.
    assert "7 events matched the deployed patterns, 3 were filtered out." in text
    assert "4 created, 3 skipped" in text
    # The deleted session comes back through the DeleteTrafficMirrorSession event.
    assert re.search(r"Restored: web-1 \(eni-\w+\) is mirrored again by tms-\w+ \(was tms-\w+\)", text)
    # The tag change: delivered (a future moto) or, today, reported as moto's limitation, in
    # which case the sweep removes app-1's two sessions; either way it mirrors batch-1, which
    # was launched without an event.
    if "filtered out (moto limitation)" in text:
        assert "cannot match a pattern inside an array of objects" in text
        assert "11 ENI(s): 1 created, 2 deleted, 2 mirrored, 6 skipped." in text
    else:
        assert "app-1's sessions were removed" in text
        assert "11 ENI(s): 1 created, 2 mirrored, 8 skipped." in text
    assert "batch-1" in text
    # The coverage report, rendered by the CLI's own code.
    assert "Coverage in us-east-1: 75.0% (3 of 4 in-scope ENIs mirrored)" in text
    assert "no target tagged Mirror=pci" in text
    assert elapsed < 60

    # The embedded AWS is stopped, and the environment is as it was.
    url = re.search(r"moto in server mode on http://127\.0\.0\.1:(\d+)", text)
    assert url is not None
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", int(url.group(1)))) != 0
    assert {k: os.environ.get(k) for k in env_before} == env_before
