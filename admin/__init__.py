"""The agents' and admins' web UI (inbox, dashboard, bot pages), served by the hub itself.
Arrives with its own issue; it will speak the inbox API in hub/inbox."""
