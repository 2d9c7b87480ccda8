"""`make demo` end to end: the embedded AWS starts, the story plays, the server stops."""

import io
import json
import os
import re
import shlex
import socket
from importlib import metadata
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
    """The CLI commands of the README's "Try it on your machine" section: every line there that
    starts with the CLI's path (`.venv/bin/traffic-mirror`)."""
    text = (ROOT / "README.md").read_text()
    section = text.split("## Try it on your machine", 1)[1].split("\n## ", 1)[0]
    return [line.strip() for line in section.splitlines() if line.strip().startswith(demo.CLI)]


def run_line(line: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """One README line as the shell runs it: (exit code, stdout, stderr). `--version` and `--help`
    are argparse's: they print on sys.stdout and exit."""
    words = shlex.split(line.partition("#")[0])[1:]
    out, err = io.StringIO(), io.StringIO()
    console = Console(file=out, width=80, color_system=None, soft_wrap=True)
    errors = Console(file=err, width=80, color_system=None, soft_wrap=True)
    try:
        code = cli.main(words, console=console, err_console=errors)
    except SystemExit as done:
        code = int(done.code or 0)
    return code, out.getvalue() + capsys.readouterr().out, err.getvalue()


def test_playground_keeps_the_embedded_aws_and_the_readme_commands_work_on_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`make playground`: the README's commands, run in order against the kept embedded AWS, do
    what they say (exit codes, JSON on stdout, the HTML file, the version, the release)."""
    commands = readme_playground_commands()
    assert commands == demo.playground_commands(README_URL)
    for shown in ("--version", "plan --endpoint-url", "--format json", "--format html --output", "--dry-run", "release"):
        assert any(shown in line for line in commands), shown
    monkeypatch.chdir(tmp_path)  # `--output coverage.html` writes into the current directory
    ran: list[tuple[str, int]] = []
    left: dict[str, object] = {}

    def try_them(url: str) -> None:
        for line in demo.playground_commands(url):
            words, _, comment = line.partition("#")
            expected = int(re.search(r"exits (\d+)", comment).group(1)) if "exits" in comment else 0  # type: ignore[union-attr]
            code, out, err = run_line(line, capsys)
            assert code == expected, (line, out, err)
            argv = words.split()
            if argv[1] == "--version":
                assert out == f"traffic-mirror {metadata.version('traffic-mirror-automation')}\n"
            elif "json" in argv and "--output" not in argv:
                assert json.loads(out)["schema_version"] >= 1, line
            elif "--output" in argv:
                page = (tmp_path / argv[argv.index("--output") + 1]).read_text()
                assert page.startswith("<!DOCTYPE html>") and ">50.0</strong>%" in page, line
                for section in ('id="chart"', 'id="extra-sensors"', 'id="extra-untrusted_sessions"', 'id="extra-mirror_loss"'):
                    assert section in page, (line, section)  # what the README says the page shows
            if argv[1] == "release":  # what a dry run finds now: our 3 sessions, then none
                dry = json.loads(run_line(f"{demo.CLI} release --endpoint-url {url} --format json", capsys)[1])
                assert (dry["dry_run"], dry["session_count"]) == (True, 0 if "--apply" in argv else 3), line
            ran.append((line, code))
        # After the last line (`release --apply`) no session of the automation is left, and the
        # ENIs are still in scope: coverage is 0 of 4.
        left.update(json.loads(run_line(f"{demo.CLI} coverage --endpoint-url {url} --format json", capsys)[1]))

    out = io.StringIO()
    assert demo.main(Console(file=out, width=80, color_system=None), keep=True, wait=try_them) == 0
    assert len(ran) == len(commands)
    assert (left["in_scope"], left["mirrored"]) == (4, 0)
    text = out.getvalue()
    assert "export AWS_ACCESS_KEY_ID=demo" in text and "Ctrl-C" in text
