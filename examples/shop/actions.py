"""Custom actions of the Kefu Shop demo bot.

These are ordinary rasa-sdk `Action` classes: the hub imports this file and runs them in
process, and the same file runs unchanged on a Rasa action server (`python -m rasa_sdk
--actions actions`, then `bot.action_endpoint` in config.yaml).

A flow runs one with an `action:` step. The action reads the slots the flow has collected
(`tracker.get_slot`) and answers with `SlotSet` events; the flow's next steps read them as
`slots.<name>`. Anything it dispatches (`dispatcher.utter_message`) is said as well, but this
action leaves the wording to the flow, so texts are changed in flows/*.yml, not here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

CARRIERS = {
    "sf": {"en": "SF Express", "zh": "顺丰速运"},
    "zto": {"en": "ZTO Express", "zh": "中通快递"},
    "ems": {"en": "China Post EMS", "zh": "中国邮政 EMS"},
}

# A stand-in for the shop's order system: a few known orders ...
ORDERS: dict[str, dict[str, Any]] = {
    "12345678": {"status": "shipped", "carrier": "sf", "days": 2},
    "20231105": {"status": "shipped", "carrier": "zto", "days": 3},
    "20231105001": {"status": "delivered", "carrier": "sf", "days": -1},
    "66660000": {"status": "lost", "carrier": "ems", "days": None},
}


def find_order(order_id: str) -> dict[str, Any]:
    """The order's record. ... and any other number gets one by its last digit, so that every
    number a tester types has an answer: 0 lost, 1-3 processing (still in the warehouse),
    4-6 shipped, 7-9 delivered."""
    if order_id in ORDERS:
        return ORDERS[order_id]
    last = int(order_id[-1])
    carrier = ("sf", "zto", "ems")[int(order_id[-2]) % 3]
    if last == 0:
        return {"status": "lost", "carrier": carrier, "days": None}
    if last <= 3:
        return {"status": "processing", "carrier": None, "days": last + 2}
    if last <= 6:
        return {"status": "shipped", "carrier": carrier, "days": last - 3}
    return {"status": "delivered", "carrier": carrier, "days": 6 - last}  # days ago


class LookupOrder(Action):
    """Looks up the order in the `order_id` slot.

    Sets `order_status` (processing, shipped, delivered or lost), `carrier` (the courier's name
    in the customer's language, or None before it ships) and `eta` (the expected or actual
    delivery date, YYYY-MM-DD, or None when lost)."""

    def name(self) -> str:
        return "lookup_order"

    def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: dict[str, Any]
    ) -> list[dict[str, Any]]:
        order_id = str(tracker.get_slot("order_id") or "").strip()
        # The hub tells the action the reply language (zh or en) in the message's metadata.
        language = (tracker.latest_message.get("metadata") or {}).get("language") or "zh"
        order = find_order(order_id)
        carrier = CARRIERS[order["carrier"]] if order["carrier"] else None
        eta = None
        if order["days"] is not None:
            eta = (date.today() + timedelta(days=order["days"])).isoformat()
        return [
            SlotSet("order_status", order["status"]),
            SlotSet("carrier", carrier.get(language, carrier["en"]) if carrier else None),
            SlotSet("eta", eta),
        ]
