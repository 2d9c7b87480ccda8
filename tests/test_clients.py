"""What the container's clients cost at a cold start: botocore's own parts, each read once."""

from typing import Any

import botocore.session
import pytest
from traffic_mirror.handler.clients import Clients, Place, make_paginator

REGION = "us-east-1"
CREDENTIALS: dict[str, Any] = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@pytest.fixture(autouse=True)
def own_loaders(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each botocore session with its own loader, as in Lambda (the suite shares one: conftest)."""
    create = botocore.session.create_loader
    monkeypatch.setattr(botocore.session, "create_loader", getattr(create, "__wrapped__", create))


class WalkCounter:
    """Counts the loader's walks through every service's model directory."""

    def __init__(self, loader: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.walks: list[str] = []
        walk = loader.list_available_services

        def counted(type_name: str) -> Any:
            self.walks.append(type_name)
            return walk(type_name)

        monkeypatch.setattr(loader, "list_available_services", counted)


def test_a_paginator_is_botocores_own_without_walking_every_models_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session = botocore.session.Session()
    client = session.create_client("ec2", region_name=REGION, **CREDENTIALS)
    loader = session.get_component("data_loader")
    walks = WalkCounter(loader, monkeypatch)
    ours = make_paginator(client, "describe_traffic_mirror_targets", loader)
    assert walks.walks == []
    pageable = [name for name in client.meta.method_to_api_mapping if client.can_paginate(name)]
    assert len(pageable) > 100
    for name in pageable:  # the same configuration (its extras merged) and operation, for every one
        theirs: Any = client.get_paginator(name)
        made: Any = make_paginator(client, name, loader)
        assert (made._pagination_cfg, made._model) == (theirs._pagination_cfg, theirs._model), name
    assert isinstance(client.get_paginator("describe_traffic_mirror_targets"), type(ours))


def test_a_member_accounts_clients_reuse_the_models_the_container_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = botocore.session.Session()
    base.set_credentials(CREDENTIALS["aws_access_key_id"], CREDENTIALS["aws_secret_access_key"])
    clients = Clients(session=base)
    clients.ec2(Place(REGION))
    loader = base.get_component("data_loader")
    walks = WalkCounter(loader, monkeypatch)
    member = Place(REGION, account="111111111111", role="traffic-mirror-member")
    assert clients.session_for(member).get_component("data_loader") is loader
    clients.ec2(member)
    clients.paginator(member, "describe_traffic_mirror_targets")
    assert walks.walks == [], "EC2's model and its paginators are read once per container"
