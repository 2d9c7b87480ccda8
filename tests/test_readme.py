"""The README and docs/ stay true to the code: every `traffic-mirror` command they show parses, and
every relative link reaches a file and a heading that exist.

The playground commands are also run, against the demo's embedded AWS, in test_demo.py.
"""

import re
import shlex
from pathlib import Path

import pytest
from traffic_mirror.cli import entry

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
IN_FLIGHT: dict[str, str] = {}
"""Docs the README links to that land with their features (their authors write them): none now."""
_COMMAND = re.compile(r"^(?:\.venv/bin/)?traffic-mirror(?: |$)")
_INLINE = re.compile(r"`((?:\.venv/bin/)?traffic-mirror [^`]+)`")
_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def shown(page: Path) -> str:
    """The page as a reader sees it: without its HTML comments (notes for maintainers)."""
    return _COMMENT.sub("", page.read_text())


def shown_commands(page: Path) -> list[str]:
    """Every `traffic-mirror` command of a page: lines of its code blocks and inline code."""
    found: list[str] = []
    in_code = False
    for line in shown(page).splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        if in_code and _COMMAND.match(line.strip()):
            found.append(line.strip().partition("  #")[0].strip())
        elif not in_code:
            found += [m.group(1) for m in _INLINE.finditer(line)]
    return found


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    in_code = False
    found = set()
    for line in page.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(slug(line.lstrip("#")))
    return found


COMMANDS = [(page.relative_to(ROOT).as_posix(), line) for page in PAGES for line in shown_commands(page)]


def test_the_pages_show_commands() -> None:
    assert len([c for c in COMMANDS if c[0] == "README.md"]) >= 15
    assert {"docs/deploy.md", "docs/how-it-works.md"} <= {page for page, _ in COMMANDS}


@pytest.mark.parametrize(("page", "line"), COMMANDS, ids=[f"{p}: {c}" for p, c in COMMANDS])
def test_every_command_shown_parses(page: str, line: str) -> None:
    """The CLI accepts it as written (placeholders like `--region R` are values; an account id
    placeholder would not be). `--version` exits 0 by design."""
    words = shlex.split(line)[1:]
    try:
        args = entry.parse(words)
    except SystemExit as done:
        assert done.code == 0 and "--version" in words, f"{page}: {line}"
        return
    assert args.command in {"plan", "coverage", "sweep", "release"}


def test_every_relative_link_reaches_a_file_and_heading() -> None:
    broken = []
    for page in PAGES:
        for target in _LINK.findall(shown(page)):
            if re.match(r"^[a-z]+:", target):
                continue  # https:, mailto:
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            name = resolved.relative_to(ROOT).as_posix() if resolved.is_relative_to(ROOT) else str(resolved)
            if not resolved.exists():
                if name not in IN_FLIGHT:
                    broken.append(f"{page.name}: {target}")
                continue
            if anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_the_readme_stays_short() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) <= 420
