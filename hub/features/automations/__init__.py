"""The bot's automation rules (`automations/*.yml` in the bot folder): on an event, when its
conditions hold, act on the conversation (label, assign, priority, reply, status, webhook)."""
