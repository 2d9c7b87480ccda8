"""`release`: delete the automation's own sessions (its ManagedBy tag), and no other; a dry run
unless `--apply`.

The deletes are the handler's tear-down path itself (`reconcile.release_region`: one paginated
read of the region's sessions, then a delete for each one tagged ManagedBy=<managed_by>), run
with MIRROR_DRY_RUN for a dry run. Reported like a sweep (`sweep_cmd`): records or a summary,
failures by error code, the tally.
"""

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from traffic_mirror.handler import reconcile
from traffic_mirror.handler.apply import Result
from traffic_mirror.handler.settings import MANAGED_TAG_KEY

from . import documents, reasons, sweep_cmd
from .context import Run, for_each_account

JSON_SCHEMA_VERSION = 1
"""`release --format json` (docs/cli-json.md)."""


def release_json(one: Run, results: Sequence[Result], dry_run: bool) -> dict[str, Any]:
    """`release --format json` for one account (docs/cli-json.md, "release")."""
    names: Mapping[str, str] = {}
    return {
        **documents.head(JSON_SCHEMA_VERSION, one.account, one.region, one.generated_at),
        "managed_by": one.settings.managed_by,
        **sweep_cmd.results_json(results, names, dry_run),
        "session_count": sum(len(sweep_cmd.sessions_of(r)) for r in results),
    }


def release_one(r: Run, apply: bool, summary: bool | None, output: str) -> tuple[int, dict[str, Any] | None]:
    """Release one account's sessions in the region: the failed deletes, and its document for JSON."""
    settings = dataclasses.replace(r.settings, dry_run=not apply)
    where = f"{r.region} of account {r.member}" if r.member else r.region
    with r.activity.show(f"Releasing {where}" + ("" if apply else " (dry run)") + "..."):
        outcome = reconcile.release_region(r.context(settings))
    results = outcome.results
    failed = sum(1 for res in results if res.status == "failed")
    if output == "json":
        return failed, release_json(r, results, not apply)
    sessions = sum(len(sweep_cmd.sessions_of(res)) for res in results)
    sweep_cmd.render_sweep(
        r.console,
        r.region,
        results,
        not apply,
        run_stamp=r.stamp,
        summary=summary,
        quiet=r.quiet,
        title=f"Release of {r.region}: sessions tagged {MANAGED_TAG_KEY}={settings.managed_by} "
        f"({sessions} on {len(results)} ENI(s))",
        group=lambda res: reasons.gist(res.decision),
    )
    return failed, None


def run(r: Run, apply: bool, summary: bool | None, output: str = "table") -> int:
    """One release, or one per account (`--account`/`--accounts`)."""
    return for_each_account(r, output, lambda one: release_one(one, apply, summary, output), JSON_SCHEMA_VERSION)
