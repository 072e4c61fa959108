"""What channels hand the hub besides new messages: edits, deletions and files."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from hub.messages import Inbound
from hub.ops.settings import Settings
from hub.ports import MediaTooLarge
from hub.testing import TestBot


async def test_an_edit_replaces_the_text_and_keeps_the_original(testbot: TestBot) -> None:
    hub = testbot.hub
    feed = hub.bus.subscribe()
    await hub.receive(
        Inbound(channel="test", sender_id="tester", text="helo", channel_message_id="7")
    )
    assert await hub.edit("test", "7", "hello") is True
    [message] = [
        m for m in await hub.store.messages(await testbot.conversation_id()) if m.direction == "in"
    ]
    assert message.text == "hello" and message.payload["original_text"] == "helo"
    assert await hub.delete("test", "7") is True
    message = await hub.store.get_message(message.id or 0)
    assert message is not None and message.payload["deleted"] is True
    events = []
    while not feed.queue.empty():
        events.append(feed.queue.get_nowait().type)
    assert "message.updated" in events and "message.deleted" in events
    assert await hub.edit("test", "no-such-id", "x") is False


def test_media_is_stored_served_and_limited(client: TestClient, settings: Settings) -> None:
    hub = client.app.state.hub  # type: ignore[attr-defined]
    url = client.portal.call(  # type: ignore[union-attr]
        lambda: hub.save_media(
            b"\x89PNG fake", name="../../etc/passwd 照片.png", mime_type="image/png"
        )
    )
    assert url.startswith("/media/") and ".." not in url and "/etc/" not in url
    got = client.get(url)
    assert got.status_code == 200 and got.content == b"\x89PNG fake"
    assert client.get("/media/../secret_key").status_code == 404
    assert client.get("/media/" + "0" * 32 + "/nothing.png").status_code == 404
    hub.media.max_bytes = 4
    with pytest.raises(MediaTooLarge, match="limit is 4"):
        client.portal.call(lambda: hub.save_media(b"12345"))  # type: ignore[union-attr]
