"""Reports: the summary of a window of conversations (counts, bot containment, escalations,
response and resolution times, CSAT, what the bot did not understand), its SQL and its route.
Public names for other features: the window of a report and the unrecognized messages."""

from hub.features.reports.store import unrecognized_texts
from hub.features.reports.summary import WHEN, BadWindow, window

__all__ = ["WHEN", "BadWindow", "unrecognized_texts", "window"]
