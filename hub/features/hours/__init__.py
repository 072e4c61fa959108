"""Business hours per team: a handoff outside them tells the customer when humans are back
(hours.py); first-response SLAs counted in business time, with warnings (sla.py)."""
