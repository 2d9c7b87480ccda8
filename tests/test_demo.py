"""`make demo` end to end: the embedded AWS starts, the story plays, the server stops."""

import io
import os
import re
import shlex
import socket
from pathlib import Path

import pytest
from rich.console import Console
from traffic_mirror import cli

from scripts import demo
from testsupport import environment

pytestmark = pytest.mark.moto

ROOT = Path(__file__).resolve().parent.parent
README_URL = f"http://127.0.0.1:{demo.PLAYGROUND_PORT}"


def test_demo_runs_end_to_end_and_cleans_up() -> None:
    env_before = {k: os.environ.get(k) for k in (*environment.FAKE_CREDENTIALS, *environment.DROPPED)}
    out = io.StringIO()
    assert demo.main(Console(file=out, width=80, color_system=None, soft_wrap=True)) == 0
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
    # Someone else's session ahead of ours: the function's warning, then in the report, first.
    assert re.search(r"The function's warning: untrusted session tms-\w+ on eni-\w+ \(number 1, ahead of ours\)", text)
    report = text.split("Is everything mirrored?")[1]
    assert report.index("Untrusted sessions (1)") < report.index("Coverage in us-east-1")
    # The coverage report, rendered by the CLI's own code: web-1 intercepted, payments-2 without a sensor.
    assert "Coverage in us-east-1: 50.0% (2 of 4 in-scope ENIs mirrored)" in text
    assert re.search(r"intercepted: session tms-\w+ \(number 1\) to untrusted target", text)
    assert "Mirror loss (last 1 h): 13.33% of mirrored bytes skipped (2.0 MB of 15.0 MB) over 2 instance(s)" in text
    assert "no target tagged Mirror=pci" in text
    # At 80 columns, every reason is on its line whole, with no padding.
    for reason in (
        "t2.micro: previous-generation (Xen) t2 does not support traffic mirroring",
        "opted out by instance tag Mirror=off",
        "ENI is a traffic mirror target (a sensor): never a source",
        "in scope (MIRROR_SCOPE=all); session number 1",
    ):
        assert reason in text
    assert re.search(
        r"no target tagged Mirror=pci can serve us-east-1b / vpc-\w+; not mirrored elsewhere", text
    )
    assert all(line == line.rstrip() for line in text.splitlines())
    assert "make playground" in text

    # The embedded AWS is stopped, and the environment is as it was.
    url = re.search(r"moto in server mode on http://127\.0\.0\.1:(\d+)", text)
    assert url is not None
    with socket.socket() as probe:
        probe.settimeout(1)
        assert probe.connect_ex(("127.0.0.1", int(url.group(1)))) != 0
    assert {k: os.environ.get(k) for k in env_before} == env_before


def readme_playground_commands() -> list[str]:
    """The CLI commands in the README's "Try the CLI locally" section."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try the CLI locally", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.strip().startswith(demo.CLI)]


def test_playground_keeps_the_embedded_aws_and_the_readme_commands_work_on_it() -> None:
    """`make playground`: the README's commands, run against the kept embedded AWS, do what they say."""
    commands = readme_playground_commands()
    assert commands == demo.playground_commands(README_URL)
    ran: list[tuple[str, int]] = []

    def try_them(url: str) -> None:
        for line in demo.playground_commands(url):
            words, _, comment = line.partition("#")
            expected = int(re.search(r"exits (\d+)", comment).group(1)) if "exits" in comment else 0  # type: ignore[union-attr]
            out = io.StringIO()
            console = Console(file=out, width=80, color_system=None, soft_wrap=True)
            code = cli.main(shlex.split(words)[1:], console=console, err_console=console)
            assert code == expected, (line, out.getvalue())
            ran.append((line, code))

    out = io.StringIO()
    assert demo.main(Console(file=out, width=80, color_system=None), keep=True, wait=try_them) == 0
    assert len(ran) == len(commands)
    text = out.getvalue()
    assert "export AWS_ACCESS_KEY_ID=demo" in text and "Ctrl-C" in text
