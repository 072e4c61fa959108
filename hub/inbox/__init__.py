"""The core's HTTP API: conversations and messages (routes), the agents' events socket,
the channels' state, knowledge search, NLU parse, media files, health, and the dependencies
every route uses (deps: who the agent is, what they may see). Features add their own routes
(hub/features/<name>/routes.py); hub/app.py includes them all."""
