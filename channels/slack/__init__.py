"""The Slack channel: channel.py (the bolt app, Events API and Socket Mode, send()), wire.py
(conversations' places, Slack's markup both ways, chat.postMessage arguments, signatures),
api.py (Web API errors, users' names, shared files), options.py (its keys in config.yaml)."""

from channels.slack.channel import SeenEvents, SlackChannel
from channels.slack.options import SlackOptions
from channels.slack.wire import SECTION_LIMIT, Place, plain_text, render, to_mrkdwn

__all__ = [
    "SECTION_LIMIT",
    "Place",
    "SeenEvents",
    "SlackChannel",
    "SlackOptions",
    "plain_text",
    "render",
    "to_mrkdwn",
]
