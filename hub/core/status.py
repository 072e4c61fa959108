"""The conversation status machine (README.md "Work as an agent (inbox API)"), enforced by
the server."""

from __future__ import annotations

from hub.messages import Status

B, P, OPEN, S, R = Status.BOT, Status.PENDING, Status.OPEN, Status.SNOOZED, Status.RESOLVED

TRANSITIONS: dict[Status, frozenset[Status]] = {
    B: frozenset({P, OPEN, R}),  # handoff; an agent takes over; resolved
    P: frozenset({OPEN, B, R}),  # taken; handed back to the bot; resolved
    OPEN: frozenset({P, S, R, B}),  # back to the queue; snoozed; resolved; handed back
    S: frozenset({OPEN, P, R, B}),  # woken (time or customer); back to queue; resolved; bot
    R: frozenset({B, OPEN}),  # the customer writes again (bot); an agent reopens
}

_WHY: dict[tuple[Status, Status], str] = {
    (B, S): "the bot has this conversation; only a conversation a human has can be snoozed",
    (P, S): "take the conversation before snoozing it",
    (R, P): "reopen the conversation (to the bot or an agent) first",
    (R, S): "a resolved conversation can't be snoozed",
}

# The bot speaks only here; everywhere else a human has (or will have) the conversation.
BOT_SPEAKS = frozenset({B})


class InvalidTransition(Exception):
    """A status change the machine does not allow; the message says why."""


def check_transition(current: Status | str, target: Status | str) -> Status:
    """Return the target status, or raise InvalidTransition with the reason."""
    try:
        current, target = Status(current), Status(target)
    except ValueError as e:
        raise InvalidTransition(str(e)) from e
    if current == target:
        raise InvalidTransition(f"the conversation is already {current.value}")
    if target not in TRANSITIONS[current]:
        why = _WHY.get((current, target), "not an allowed transition")
        raise InvalidTransition(f"cannot go from {current.value} to {target.value}: {why}")
    return target
