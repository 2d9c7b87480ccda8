"""Reasons as people read them: without what the lines beside them already say.

The planner's decisions carry structured fields (`out_of_scope`, `problem`, `kept_session`,
`session_number`); the CLI reads those. The one thing it still takes from a reason's text is
its first clause (why a create is in scope), in `gist` below: the only place in cli/ that reads
a reason string.
"""

from traffic_mirror.handler import planner
from traffic_mirror.handler.model import Decision

OUT_OF_SCOPE_LABELS = planner.OUT_OF_SCOPE
"""Out-of-scope identifier (the JSON's `out_of_scope` keys) -> the words in the tables."""


def out_of_scope_label(decision: Decision) -> str | None:
    if decision.out_of_scope is None:
        return None
    return OUT_OF_SCOPE_LABELS.get(decision.out_of_scope, decision.out_of_scope)


def gist(decision: Decision) -> str:
    """The reason without the ids shown beside it (target, filter, kept session).

    A create's reason is "<why in scope>; <target kind> <target>; <filter choice>; session
    number N": the target and filter are printed on their own line, so only why and N stay.
    """
    if decision.problem == planner.INTERCEPTED and decision.outcome != "create":
        return decision.reason  # why it is not mirrored though our session is in place
    if decision.outcome == "mirrored" and decision.kept_session:
        return "already mirrored: its target and filter still qualify"
    if decision.outcome == "create":
        why = decision.reason.split("; ")[0]
        number = f"session number {decision.session_number}" if decision.session_number else ""
        return "; ".join(p for p in (why, number) if p)
    return decision.reason


def group(decision: Decision) -> str:
    """What a summary groups this decision under: its out-of-scope words, or its reason's first clause."""
    return out_of_scope_label(decision) or gist(decision).split("; ")[0]
