"""botocore's models parsed, and its client method tables built, once per process instead of per session.

boto3 caches parsed models per session, and every `mock_aws()` starts from a new default session
(the handler's `clients.reset()` too): each test would parse the EC2 model and the endpoint
table again, and build the EC2 client's ~600 methods again for every client, about 0.3 s and
0.1 s each time. The method table is a pure function of the service model (each method only
calls `self._make_api_call(name, kwargs)`); the `creating-client-class` event that lets boto3
and others customise a class still fires for every new client class.
"""

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any

import botocore.client
import botocore.session


@contextlib.contextmanager
def shared_loader() -> Iterator[None]:
    """Every botocore session created inside the block shares one data loader."""
    original = botocore.session.create_loader
    botocore.session.create_loader = functools.cache(original)
    try:
        yield
    finally:
        botocore.session.create_loader = original


@contextlib.contextmanager
def built_once() -> Iterator[None]:
    """`shared_loader()`, and each service's client method table built once."""
    creator: Any = botocore.client.ClientCreator  # `_create_methods` is private: not in the stubs
    original: Callable[[Any, Any], dict[str, Any]] = creator._create_methods
    tables: dict[tuple[str, str], dict[str, Any]] = {}

    def create_methods(self: Any, service_model: Any) -> dict[str, Any]:
        key = (service_model.service_name, service_model.api_version)
        if key not in tables:
            tables[key] = original(self, service_model)
        return dict(tables[key])  # the caller adds to it (events); the functions are shared

    creator._create_methods = create_methods
    try:
        with shared_loader():
            yield
    finally:
        creator._create_methods = original
