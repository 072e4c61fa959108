"""The web chat widget's channel: channel.py (a WebSocket per browser tab, the widget's
script and demo page), frames.py (the JSON frames both ways, the site-signed identity),
upload.py (a customer's file), options.py (its keys in config.yaml), static/ (widget.js)."""

from channels.web.channel import WebChannel
from channels.web.options import WebOptions

__all__ = ["WebChannel", "WebOptions"]
