"""Cold containers in one process: import the handler anew, and give the caller back its own modules."""

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

HANDLER = "traffic_mirror.handler"


def in_package(package: str) -> Callable[[str], bool]:
    """Whether a module name is `package` or inside it."""
    return lambda name: name == package or name.startswith(f"{package}.")


is_handler_module = in_package(HANDLER)


def purge(reimported: Callable[[str], bool] = is_handler_module) -> None:
    """Forget these modules: the next import runs them again (new clients, caches, pools)."""
    for name in [n for n in sys.modules if reimported(n)]:
        del sys.modules[name]


def fresh_handler() -> ModuleType:
    """A cold container's `handler.app`: the whole handler package imported anew."""
    purge()
    return importlib.import_module(f"{HANDLER}.app")


@contextlib.contextmanager
def preserved(reimported: Callable[[str], bool] = is_handler_module) -> Iterator[None]:
    """Whatever the block imports anew, the caller gets its own module objects back after."""
    saved = {name: module for name, module in sys.modules.items() if reimported(name)}
    try:
        yield
    finally:
        purge(reimported)
        sys.modules.update(saved)
