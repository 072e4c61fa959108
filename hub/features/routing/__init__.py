"""Auto-assignment and the queue: pending conversations go to online agents with room, round
robin per team; the others wait in a queue and their customers are told their place."""

from hub.features.routing.assignment import Routing

__all__ = ["Routing"]
