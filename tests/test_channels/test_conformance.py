"""One conformance test for every messaging channel: driven from outside through its kit
(tests/test_channels/kits.py), signed as its platform signs, answered through a local server
that speaks its API. Verify, parse, answer, dedupe, bad signature."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from channels.registry import channel_types
from hub.app import create_app
from hub.ops.settings import ChannelConfig, Settings
from nlu import IntentClassifier
from tests.test_channels.kits import FakeApi, Kit, Request, kits

KITS = {kit.type: kit for kit in kits(channel_types())}  # every registered platform channel
NAME = "conformance"


def send(client: TestClient, request: Request):  # type: ignore[no-untyped-def]
    return client.request(
        request.method,
        request.path,
        headers=request.headers,
        content=request.body,
        params=request.params,
    )


@pytest.fixture(params=sorted(KITS))
def kit(request: pytest.FixtureRequest) -> Kit:
    return KITS[request.param]


def test_every_platform_channel_is_driven_here() -> None:
    assert {"wechat", "telegram", "slack"} <= set(KITS), sorted(KITS)


@pytest.fixture
def api(kit: Kit) -> Iterator[FakeApi]:
    with kit.fake_api() as fake:
        yield fake


@pytest.fixture
def hub_client(
    kit: Kit, api: FakeApi, settings: Settings, classifier: IntentClassifier, flows: object
) -> Iterator[TestClient]:
    channel = ChannelConfig(name=NAME, type=kit.type, **kit.options(api.base))
    configured = settings.model_copy(update={"channels": [channel]})
    with TestClient(create_app(configured, classifier=classifier, flows=flows)) as client:  # type: ignore[arg-type]
        yield client


def stored(client: TestClient) -> list[tuple[str, str, str]]:
    """(direction, sender type, text) of every message stored for the channel instance."""
    hub = client.app.state.hub  # type: ignore[attr-defined]

    async def load() -> list[tuple[str, str, str]]:
        from sqlmodel import col, select

        from hub.store.models import Message

        async with hub.db.read() as s:
            query = select(Message).where(Message.channel == NAME).order_by(col(Message.id))
            return [(m.direction, str(m.sender_type), m.text) for m in (await s.exec(query)).all()]

    return client.portal.call(load)  # type: ignore[union-attr]


def drain(client: TestClient) -> None:
    hub = client.app.state.hub  # type: ignore[attr-defined]
    client.portal.call(hub.outbox.drain)  # type: ignore[union-attr]


# the platforms that check the webhook URL when it is set (Telegram doesn't)
VERIFYING = sorted(t for t, k in KITS.items() if k.verification(NAME, "") is not None)


@pytest.mark.parametrize("kit", VERIFYING, indirect=True)
def test_the_webhook_verification_is_answered(kit: Kit, hub_client: TestClient) -> None:
    request = kit.verification(NAME, "challenge-5f2a")
    assert request is not None
    response = send(hub_client, request)
    assert response.status_code == 200, response.text
    assert "challenge-5f2a" in response.text
    assert stored(hub_client) == []


def test_a_message_is_stored_and_answered(kit: Kit, api: FakeApi, hub_client: TestClient) -> None:
    response = send(hub_client, kit.message(NAME, "cust-1", "hello", "m-1"))
    assert response.status_code == 200, response.text
    drain(hub_client)
    replies = kit.replies(response, api, "cust-1")
    assert replies and replies[0].startswith("Hello!"), replies
    assert stored(hub_client)[0] == ("in", "contact", "hello")


def test_a_redelivery_is_stored_once_and_answered_once(
    kit: Kit, api: FakeApi, hub_client: TestClient
) -> None:
    first = send(hub_client, kit.message(NAME, "cust-2", "hello", "m-2"))
    drain(hub_client)
    after_first = stored(hub_client)
    again = send(hub_client, kit.message(NAME, "cust-2", "hello", "m-2"))
    drain(hub_client)
    assert again.status_code == 200, again.text
    assert stored(hub_client) == after_first  # nothing new stored, no second bot turn
    sent = api.texts_to("cust-2")
    assert len(sent) == len(set(sent)), sent  # the answer went out once
    assert kit.replies(first, api, "cust-2")


def test_a_forged_request_is_refused_and_leaves_nothing(
    kit: Kit, api: FakeApi, hub_client: TestClient
) -> None:
    response = send(hub_client, kit.forged(NAME, "cust-3", "hello", "m-3"))
    assert response.status_code in (401, 403), response.text
    drain(hub_client)
    assert api.texts_to("cust-3") == []
    assert stored(hub_client) == []
