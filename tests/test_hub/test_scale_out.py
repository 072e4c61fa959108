"""Two hub processes over one PostgreSQL and one Redis (DESIGN.md: scale-out mode).

A customer on process A and an agent on process B: everything of the end-to-end test holds —
the bot answers, the handoff reaches the agent's socket on B, the agent's reply (sent on B)
reaches the customer's widget on A, the bot stays silent while the human has it. And what two
processes could get wrong: a redelivery that reaches both is answered once, and one
customer's messages spread over both processes are answered one turn at a time, in order.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import websockets

from tests.test_hub.hubprocs import Cluster

EMAIL, PASSWORD = "agent@example.com", "scale-out-pass"


async def frame(ws: Any, pred: Callable[[dict[str, Any]], bool], wait_s: float = 20) -> Any:
    """The next frame satisfying `pred` (others are skipped)."""
    async with asyncio.timeout(wait_s):
        while True:
            data = json.loads(await ws.recv())
            if pred(data):
                return data


async def login(base: str) -> str:
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/api/v1/auth/login", json={"email": EMAIL, "password": PASSWORD})
        r.raise_for_status()
        return str(r.json()["access_token"])


def test_a_customer_on_one_process_and_an_agent_on_another(cluster: Cluster) -> None:
    cluster.create_agent(EMAIL, PASSWORD)
    a = cluster.hub().start()
    b = cluster.hub().start()  # loads the model A trained

    async def scenario() -> None:
        token = await login(b.base)
        auth = {"authorization": f"Bearer {token}"}
        async with (
            websockets.connect(f"{b.ws}/api/v1/events?token={token}") as agent_feed,
            websockets.connect(f"{a.ws}/channels/web/ws?visitor=v-scale-1") as widget,
            httpx.AsyncClient(base_url=b.base, headers=auth) as api_b,
        ):
            hello = await frame(widget, lambda f: f["type"] == "hello")
            assert hello["visitor"] == "v-scale-1"

            # The bot answers on A; B's agent socket sees the conversation and the message.
            await widget.send(json.dumps({"type": "message", "client_id": "c1", "text": "hi"}))
            await frame(widget, lambda f: f["type"] == "ack" and f["client_id"] == "c1")
            bot = await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "bot")
            assert bot["text"]
            created = await frame(agent_feed, lambda e: e["type"] == "conversation.created")
            conversation_id = created["conversation_id"]
            said = await frame(
                agent_feed,
                lambda e: e["type"] == "message.created" and e["data"]["sender"] == "contact",
            )
            assert said["data"]["text"] == "hi"

            # Handoff on A reaches B live.
            await widget.send(json.dumps({"type": "postback", "payload": "/human"}))
            await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "system")
            handoff = await frame(
                agent_feed,
                lambda e: (
                    e["type"] == "conversation.status_changed" and e["data"]["to"] == "pending"
                ),
            )
            assert handoff["conversation_id"] == conversation_id

            # The agent replies on B; the customer's socket on A gets it.
            r = await api_b.post(
                f"/api/v1/conversations/{conversation_id}/messages",
                json={"text": "Hi, Lin here, on process B"},
            )
            assert r.status_code == 201, r.text
            reply = await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "agent")
            assert reply["text"] == "Hi, Lin here, on process B"

            # The bot is silent while the human has it; B sees the customer's message.
            await widget.send(json.dumps({"type": "message", "client_id": "c2", "text": "ok"}))
            await frame(widget, lambda f: f["type"] == "ack" and f["client_id"] == "c2")
            await frame(
                agent_feed,
                lambda e: e["type"] == "message.created" and e["data"]["text"] == "ok",
            )
            messages = (await api_b.get(f"/api/v1/conversations/{conversation_id}/messages")).json()
            senders = [m["sender"] for m in messages["items"]]
            assert senders[-2:] == ["agent", "contact"], senders  # no bot after the agent
            agent_messages = [m for m in messages["items"] if m["sender"] == "agent"]
            assert [m["delivery"] for m in agent_messages] == ["sent"]

            # Resolved on B; the next message on A goes to the bot again.
            r = await api_b.post(
                f"/api/v1/conversations/{conversation_id}/status", json={"status": "resolved"}
            )
            assert r.status_code == 200, r.text
            await widget.send(json.dumps({"type": "message", "client_id": "c3", "text": "hello"}))
            await frame(widget, lambda f: f["type"] == "message" and f["sender"] == "bot")

    asyncio.run(scenario())


def test_two_processes_answer_a_message_once_and_one_turn_at_a_time(cluster: Cluster) -> None:
    cluster.create_agent(EMAIL, PASSWORD)
    hubs = [cluster.hub().start(), cluster.hub().start()]

    async def scenario() -> None:
        async with httpx.AsyncClient(timeout=30) as http:

            async def say(base: str, sender: str, text: str, message_id: str) -> Any:
                body = {"sender": sender, "message": text, "metadata": {"message_id": message_id}}
                r = await http.post(f"{base}/webhooks/rest/webhook", json=body)
                assert r.status_code == 200, r.text
                return r.json()

            # The same message delivered to both processes at once: stored and answered once.
            first, second = await asyncio.gather(
                *(say(h.base, "dup", "where is my order 12345678", "m-1") for h in hubs)
            )
            assert first == second and first

            # One customer, twelve messages, alternately to A and B, all at once: every
            # message gets its own answer right after it, never interleaved with another turn.
            texts = [f"hello {i}" for i in range(12)]
            await asyncio.gather(
                *(say(hubs[i % 2].base, "busy", t, f"b-{i}") for i, t in enumerate(texts))
            )

            token = await login(hubs[0].base)
            auth = {"authorization": f"Bearer {token}"}
            listed = (await http.get(f"{hubs[0].base}/api/v1/conversations", headers=auth)).json()
            ids = {c["contact"]["external_id"]: c["id"] for c in listed["items"]}

            async def history(sender: str) -> list[dict[str, Any]]:
                url = f"{hubs[1].base}/api/v1/conversations/{ids[sender]}/messages"
                return list((await http.get(url, headers=auth)).json()["items"])

            dup = await history("dup")
            assert [m["sender"] for m in dup].count("contact") == 1
            assert [m["direction"] for m in dup].count("out") == len(first)

            busy = await history("busy")
            assert sorted(m["text"] for m in busy if m["sender"] == "contact") == sorted(texts)
            turns: list[list[str]] = []
            for m in busy:
                if m["direction"] == "in":
                    turns.append([])
                else:
                    assert turns, "an answer before any message"
                    turns[-1].append(m["sender"])
            assert len(turns) == 12 and all(turn and set(turn) == {"bot"} for turn in turns), turns

    asyncio.run(scenario())
    for hub in hubs:
        hub.stop()
        assert "Traceback" not in hub.log(), hub.log()
