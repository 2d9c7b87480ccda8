"""The Lambda's code: the `handler` package, found next to this module, never via the CWD.

The same file list feeds three things, so they can't drift apart: the `pulumi.AssetArchive`
that Pulumi uploads, a byte-for-byte deterministic zip (tests load the handler from it), and
a content hash that re-triggers the one-time sweep when the code changes.

Bytecode: Lambda's `/var/task` is read-only, so a package of sources is compiled at every cold
start (about 60 ms of this handler's). When the Python running `pulumi up` is the function's
runtime (`python3.13` deployed from Python 3.13), the archive also carries each module's
bytecode as an unchecked hash-based `.pyc` (PEP 552: loaded without reading the source, exactly
what the sources compile to); from another Python it carries the sources only, as before.
"""

import hashlib
import py_compile
import sys
import tempfile
import zipfile
from pathlib import Path

import pulumi

from ..handler import settings as handler_settings

ARCHIVE_PACKAGE = "handler"
"""Top-level directory inside the archive; the Lambda's entry point is `handler.app.lambda_handler`."""

_SOURCE_SUFFIXES = (".py", ".json")
_SKIPPED_DIRS = {"__pycache__", "tests", "test"}
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def handler_dir() -> Path:
    """The directory of the installed `handler` package (a checkout or site-packages alike)."""
    return Path(handler_settings.__file__).resolve().parent


_NOT_SHIPPED = {"__main__.py", "conftest.py"}
"""`handler/__main__.py` starts the operator CLI for `python -m handler`; the Lambda never runs it."""


def _is_test_file(name: str) -> bool:
    return name.startswith("test_") or name.endswith("_test.py") or name in _NOT_SHIPPED


def source_files(root: Path | None = None) -> list[tuple[str, Path]]:
    """(archive name, file) for every handler source file, sorted by archive name.

    Only `.py` and `.json` files; no `__pycache__`, tests, or anything else lying around.
    """
    root = root or handler_dir()
    files: list[tuple[str, Path]] = []
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or path.suffix not in _SOURCE_SUFFIXES:
            continue
        if any(part in _SKIPPED_DIRS or part.startswith(".") for part in relative.parts):
            continue
        if _is_test_file(path.name):
            continue
        files.append((f"{ARCHIVE_PACKAGE}/{relative.as_posix()}", path))
    files.sort(key=lambda item: item[0])
    if not any(name == f"{ARCHIVE_PACKAGE}/app.py" for name, _ in files):
        pulumi.log.warn(f"handler/app.py not found under {root}: the Lambda's entry point will be missing")
    return files


def this_runtime() -> str:
    """The Lambda runtime this Python is (`python3.13`)."""
    return f"python{sys.version_info.major}.{sys.version_info.minor}"


def bytecode_files(runtime: str, root: Path | None = None) -> list[tuple[str, Path]]:
    """(archive name, .pyc file) for every module when this Python is `runtime`, else none.

    Written once per content into the temporary directory (the files must outlive the program:
    Pulumi reads assets when it uploads).
    """
    if runtime != this_runtime():
        return []
    sources = [(name, path) for name, path in source_files(root) if name.endswith(".py")]
    cache = Path(tempfile.gettempdir()) / f"traffic-mirror-bytecode-{code_hash(root)[:16]}-{sys.implementation.cache_tag}"
    found: list[tuple[str, Path]] = []
    for name, path in sources:
        folder, _, module = name.rpartition("/")
        archived = f"{folder}/__pycache__/{module[:-3]}.{sys.implementation.cache_tag}.pyc"
        compiled = cache / archived
        if not compiled.exists():
            compiled.parent.mkdir(parents=True, exist_ok=True)
            py_compile.compile(
                str(path),
                cfile=str(compiled),
                doraise=True,
                invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
            )
        found.append((archived, compiled))
    return sorted(found)


def package_files(runtime: str | None = None, root: Path | None = None) -> list[tuple[str, Path]]:
    """What the archive holds: the sources, and their bytecode when this Python is `runtime`."""
    return sorted([*source_files(root), *(bytecode_files(runtime, root) if runtime else [])])


def code_archive(root: Path | None = None, runtime: str | None = None) -> pulumi.AssetArchive:
    """The Lambda deployment package as a Pulumi archive (keys are paths inside the zip)."""
    return pulumi.AssetArchive({name: pulumi.FileAsset(str(path)) for name, path in package_files(runtime, root)})


def code_hash(root: Path | None = None) -> str:
    """sha256 over the archive's names and contents: equal code, equal hash, on any machine."""
    digest = hashlib.sha256()
    for name, path in source_files(root):
        data = path.read_bytes()
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(str(len(data)).encode())
        digest.update(b"\0")
        digest.update(data)
    return digest.hexdigest()


def write_zip(destination: Path, root: Path | None = None, runtime: str | None = None) -> Path:
    """Write the same files into a deterministic zip: sorted entries, fixed times and modes."""
    with zipfile.ZipFile(destination, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, path in package_files(runtime, root):
            info = zipfile.ZipInfo(name, date_time=_FIXED_ZIP_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    return destination
