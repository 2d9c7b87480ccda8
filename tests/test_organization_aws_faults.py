"""Issue 22, finding 4: Organizations failing stays local (see test_organization_aws.py for the others).

Organizations' errors are injected in front of a moto server (testsupport/faults.py), not with a
botocore hook, so the handler's botocore sees one failed round trip as AWS answers it. A moto server
shares the process's backends: this module cannot share a world with the in-process ones.
"""

import contextlib
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from traffic_mirror.handler import app
from traffic_mirror.handler.clients import Clients
from traffic_mirror.handler.context import Container
from traffic_mirror.handler.settings import Settings

from tests.test_organization import REGION, SCHEDULED, LambdaContext, sqs_batch
from tests.test_organization_aws import enis_of, sessions_on
from testsupport import faults, logs, moto_server, sandbox
from testsupport.event_builders import run_instances_record, wrap

pytestmark = pytest.mark.moto

Server = moto_server.Server[faults.FaultyApp]


@pytest.fixture(scope="module")
def faulty() -> Iterator[Server]:
    with moto_server.Server(lambda moto: faults.FaultyApp(moto, services=("ec2", "organizations"))) as server, sandbox.aws_rules():
        yield server


def organization_world(server: Server) -> tuple[Any, sandbox.Account, str, str]:
    """In the server: the hub (one sensor, one filter), an organization with one unit, a member in it."""
    server.reset()
    hub = faults.bypass(boto3.client("ec2", region_name=REGION, endpoint_url=server.url))
    account = sandbox.build_account(hub, REGION, azs=("a",), ami=sandbox.moto_ami())
    orgs = faults.bypass(boto3.client("organizations", region_name=REGION, endpoint_url=server.url))
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    unit = orgs.create_organizational_unit(ParentId=root, Name="workloads")["OrganizationalUnit"]["Id"]
    created = orgs.create_account(Email="w@example.com", AccountName="workload")["CreateAccountStatus"]
    member = str(
        orgs.describe_create_account_status(CreateAccountRequestId=created["Id"])["CreateAccountStatus"][
            "AccountId"
        ]
    )
    orgs.move_account(AccountId=member, SourceParentId=root, DestinationParentId=unit)
    return hub, account, unit, member


def test_organizations_errors_reach_botocore_as_aws_answers_them(faulty: Server) -> None:
    """The injection the reproducers below rely on (JSON protocol: the action in X-Amz-Target)."""
    _, _, unit, member = organization_world(faulty)
    orgs = boto3.client(
        "organizations",
        region_name=REGION,
        endpoint_url=faulty.url,
        config=Config(retries={"total_max_attempts": 1}),
    )
    for code in ("TooManyRequestsException", "AccessDeniedException"):
        faulty.app.force("error", ["ListAccountsForParent"], times=1, answer=("400 Bad Request", code))
        with pytest.raises(ClientError) as refused:
            orgs.list_accounts_for_parent(ParentId=unit)
        assert refused.value.response["Error"]["Code"] == code
        assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert [a["Id"] for a in orgs.list_accounts_for_parent(ParentId=unit)["Accounts"]] == [member]
    assert faulty.app.stats.by_action[("ListAccountsForParent", "error")] == 2
    assert faulty.app.stats.reached["ListAccountsForParent"] == 1  # the refused ones never reached moto


def one_try() -> Container:
    """A container whose botocore gives up at once: what follows once its retries are spent."""
    return Container(
        Clients(
            Config(retries={"mode": "standard", "total_max_attempts": 1}, connect_timeout=3, read_timeout=15)
        )
    )


def test_organizations_throttled_fails_only_the_member_message_and_the_hub_is_mirrored(
    faulty: Server,
) -> None:
    hub, account, unit, member = organization_world(faulty)
    (own,) = sandbox.launch(hub, account, account.subnets["us-east-1a"])
    theirs = wrap(
        run_instances_record([own], event_id="member-launch"), account=member
    )  # never read: a member's event
    batch = sqs_batch(wrap(run_instances_record([own], event_id="hub-launch")), theirs)
    faulty.app.force(
        "error", ["ListAccountsForParent"], answer=("400 Bad Request", "TooManyRequestsException")
    )
    result = app.handle(
        batch,
        LambdaContext(),
        endpoint=faulty.url,
        settings=Settings(accounts=f"organization:{unit}"),
        container=one_try(),
    )
    assert faulty.app.stats.by_action[("ListAccountsForParent", "error")] >= 1
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}  # the member's message is retried
    assert len(sessions_on(hub, enis_of([own]))) == 1


def test_organizations_access_denied_never_stops_the_hubs_own_sweep(faulty: Server) -> None:
    hub, account, unit, _ = organization_world(faulty)
    own = sandbox.launch(hub, account, account.subnets["us-east-1a"], count=2)
    faulty.app.force("error", ["ListAccountsForParent"], answer=("400 Bad Request", "AccessDeniedException"))
    settings = Settings(accounts=f"organization:{unit}", sweep_grace_seconds=0)
    with logs.captured() as records, contextlib.suppress(app.RetryableFailure):
        app.handle(SCHEDULED, LambdaContext(), endpoint=faulty.url, settings=settings, container=one_try())
    assert faulty.app.stats.by_action[("ListAccountsForParent", "error")] >= 1
    assert len(sessions_on(hub, enis_of(own))) == 2
    (coverage,) = [r for r in records if r.getMessage() == "coverage"]
    assert vars(coverage)["in_scope"] >= 2, "the hub's own ENIs are counted"
