from __future__ import annotations

import pytest

from hub.core.status import TRANSITIONS, InvalidTransition, check_transition
from hub.messages import Status

ALLOWED = [(a, b) for a, targets in TRANSITIONS.items() for b in targets]


@pytest.mark.parametrize(("source", "target"), sorted(ALLOWED))
def test_allowed(source: Status, target: Status) -> None:
    assert check_transition(source, target) == target


@pytest.mark.parametrize(
    ("source", "target", "why"),
    [
        (Status.BOT, Status.SNOOZED, "only a conversation a human has"),
        (Status.PENDING, Status.SNOOZED, "take the conversation"),
        (Status.RESOLVED, Status.PENDING, "reopen"),
        (Status.RESOLVED, Status.SNOOZED, "can't be snoozed"),
        (Status.OPEN, Status.OPEN, "already open"),
    ],
)
def test_refused_with_a_reason(source: Status, target: Status, why: str) -> None:
    with pytest.raises(InvalidTransition, match=why):
        check_transition(source, target)


def test_unknown_status() -> None:
    with pytest.raises(InvalidTransition):
        check_transition("bot", "closed")


def test_every_status_can_be_left_and_resolved_reopens_to_the_bot() -> None:
    assert set(TRANSITIONS) == set(Status)
    assert Status.BOT in TRANSITIONS[Status.RESOLVED]
    for status in (Status.BOT, Status.PENDING, Status.OPEN, Status.SNOOZED):
        assert Status.RESOLVED in TRANSITIONS[status]
