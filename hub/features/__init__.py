"""Features: each keeps its logic, its storage and its routes in its own package, imports the
core (hub.core, hub.store, hub.messages, hub.ports, hub.inbox's dependencies, hub.ops) and
another feature only through the names its package exports. A feature takes part in the core
through hub.core.conversations.Feature; hub/app.py builds them and lists them for the core."""
