"""Outgoing webhooks: events delivered to subscribers' URLs, signed and retried (sender.py),
never to the hub's own network (hub/ops/netguard.py); their subscriptions and deliveries are
stored (store.py) and managed by admins (routes.py). `encode` and `sign` are public: the
automations' webhook action signs the same way."""

from hub.features.webhooks.sender import encode, sign

__all__ = ["encode", "sign"]
