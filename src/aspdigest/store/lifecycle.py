"""The delivery lifecycle: its statuses, the moves allowed between them, and named groups.

Used by the whole schedule/outbox stage: `Store.move` refuses (`IllegalTransition`) any
change this table does not allow, and plan, approval, the queue actions and the runner name
statuses through `Status` and the groups below instead of string tuples. The values are the
strings the store has always kept, so no migration is needed. Takes and returns nothing but
constants and `check(frm, to)`.

    planned → approved → claimed → sent | failed | unknown
    planned/approved/held/failed → skipped;  approved → held (files changed, or missed)
    held/failed/skipped → approved (send now, retry, reschedule) or planned (approval dropped)
    unknown → sent | failed (a person resolved it)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum
from types import MappingProxyType


class Status(StrEnum):
    # In the order messages list them (`ordered`): the ones a person can still act on first.
    PLANNED = "planned"
    APPROVED = "approved"
    HELD = "held"
    FAILED = "failed"
    SKIPPED = "skipped"
    CLAIMED = "claimed"
    SENT = "sent"
    UNKNOWN = "unknown"


S = Status

# Not yet out, and no doubt about it: plan may update them, a person may approve or skip them.
OPEN: frozenset[Status] = frozenset({S.PLANNED, S.APPROVED, S.HELD, S.FAILED})
APPROVABLE: frozenset[Status] = OPEN
# The runner has nothing more to do with these.
DONE: frozenset[Status] = frozenset({S.SENT, S.FAILED, S.UNKNOWN, S.SKIPPED, S.HELD})
# Someone signed it off (and it may have gone further since).
APPROVED_OR_LATER: frozenset[Status] = frozenset({S.APPROVED, S.CLAIMED, S.SENT, S.UNKNOWN})

# Self-moves (planned → planned, approved → approved) are real, logged changes: a reschedule,
# a re-approval, `send-now`.
TRANSITIONS: Mapping[Status, frozenset[Status]] = MappingProxyType(
    {
        S.PLANNED: frozenset({S.PLANNED, S.APPROVED, S.SKIPPED}),
        S.APPROVED: frozenset({S.APPROVED, S.PLANNED, S.CLAIMED, S.SKIPPED, S.HELD}),
        S.HELD: frozenset({S.APPROVED, S.PLANNED, S.SKIPPED}),
        S.FAILED: frozenset({S.APPROVED, S.PLANNED, S.SKIPPED}),
        S.SKIPPED: frozenset({S.APPROVED, S.PLANNED}),
        S.CLAIMED: frozenset({S.SENT, S.FAILED, S.UNKNOWN}),
        S.UNKNOWN: frozenset({S.SENT, S.FAILED}),
        S.SENT: frozenset(),
    }
)


def ordered(group: Iterable[str]) -> tuple[Status, ...]:
    """A group's statuses in a fixed order, for messages (a frozenset has none)."""
    members = set(group)
    return tuple(s for s in Status if s in members)


class IllegalTransition(ValueError):
    """A status change the lifecycle does not allow: a bug in the caller, not a user error."""


def status(value: str) -> Status:
    try:
        return Status(value)
    except ValueError:
        raise IllegalTransition(f"unknown delivery status {value!r}") from None


def check(frm: Iterable[str], to: str) -> Status:
    """`to` as a Status, if every status in `frm` may move to it; else IllegalTransition."""
    target = status(to)
    for source in frm:
        if target not in TRANSITIONS[status(source)]:
            raise IllegalTransition(f"a delivery cannot go from {source} to {target}")
    return target
