"""Pure helpers for the standard ``conditions`` list (a map keyed by ``type``).

A condition's ``lastTransitionTime`` changes only when its ``status`` changes; setting the
same status again only refreshes reason and message. Everything here returns new lists.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from backup_operator.api.v1alpha1 import Condition, ConditionStatus

SUCCEEDED = "Succeeded"
QUEUED = "Queued"
RUNNING = "Running"


def set_condition(
    conditions: Sequence[Condition],
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    now: datetime,
    generation: int,
) -> list[Condition]:
    """Return ``conditions`` with ``type_`` set; other types keep their order."""
    old = find(conditions, type_)
    since = old.last_transition_time if old is not None and old.status == status else now
    new = Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time=since,
        observed_generation=generation,
    )
    if old is None:
        return [*conditions, new]
    return [new if c.type == type_ else c for c in conditions]


def find(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of ``type_``, if present."""
    return next((c for c in conditions if c.type == type_), None)
