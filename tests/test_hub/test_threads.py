"""What channels with threads of their own (email) need from the hub: a message sent to the
conversation the channel's threading found, or to a new one; mail from machines stored and
never answered; state that outlives the process; a sent message reported undelivered."""

from __future__ import annotations

from hub.messages import Delivery, Inbound, Reply, Sender, Status
from hub.testing import TestBot


def mail(sender: str, text: str, message_id: str, **fields: object) -> Inbound:
    return Inbound(
        channel="test", sender_id=sender, text=text, channel_message_id=message_id, **fields
    )


async def test_a_new_thread_is_a_new_conversation_and_a_reply_goes_back_to_its_own(
    testbot: TestBot,
) -> None:
    hub = testbot.hub
    first = await hub.receive(mail("ann@example.com", "hello", "<1@a>"))
    order = await hub.conversation_of("test", "<1@a>")
    await hub.receive(mail("ann@example.com", "hello", "<2@a>", new_conversation=True))
    invoice = await hub.conversation_of("test", "<2@a>")
    assert first and order is not None and invoice is not None and order != invoice

    # a reply in the first thread, though the contact's latest conversation is the second
    await hub.receive(mail("ann@example.com", "still waiting", "<3@a>", conversation_id=order))
    assert await hub.conversation_of("test", "<3@a>") == order
    # from another address of the customer: still that thread
    await hub.receive(mail("ann@work.example", "me again", "<4@a>", conversation_id=order))
    assert await hub.conversation_of("test", "<4@a>") == order


async def test_a_thread_named_on_another_channel_is_not_taken(testbot: TestBot) -> None:
    hub = testbot.hub
    await hub.receive(Inbound(channel="web", sender_id="v1", text="hello", channel_message_id="w"))
    elsewhere = await hub.conversation_of("web", "w")
    assert elsewhere is not None  # a real conversation, on the web channel
    await hub.receive(mail("bob@example.com", "hello", "<5@b>", conversation_id=elsewhere))
    mine = await hub.conversation_of("test", "<5@b>")
    assert mine is not None and mine != elsewhere


async def test_mail_from_a_machine_is_stored_unanswered_and_reopens_nothing(
    testbot: TestBot,
) -> None:
    hub = testbot.hub
    await testbot.say("hello")
    conversation_id = await testbot.conversation_id()
    conversation = await hub.store.get_conversation(conversation_id)
    assert conversation is not None
    await hub.conversations.transition(conversation, Status.RESOLVED, "system")
    before = len(await hub.store.messages(conversation_id))

    replies = await hub.receive(
        Inbound(
            channel=testbot.CHANNEL,
            sender_id=testbot.sender_id,
            text="I am out of the office until Monday.",
            channel_message_id="ooo-1",
            automated=True,
        )
    )

    assert replies == []
    messages = await hub.store.messages(conversation_id)
    assert len(messages) == before + 1 and messages[-1].text.startswith("I am out")
    assert await testbot.status() == Status.RESOLVED


async def test_channel_state_is_kept_per_channel_and_key(testbot: TestBot) -> None:
    hub = testbot.hub
    assert await hub.load_state("mail", "imap:INBOX") is None
    await hub.save_state("mail", "imap:INBOX", {"uidvalidity": 7, "last_uid": 41})
    await hub.save_state("mail", "imap:INBOX", {"uidvalidity": 7, "last_uid": 42})
    await hub.save_state("other", "imap:INBOX", {"last_uid": 1})
    assert await hub.load_state("mail", "imap:INBOX") == {"uidvalidity": 7, "last_uid": 42}
    assert await hub.load_state("other", "imap:INBOX") == {"last_uid": 1}


async def test_a_bounce_marks_the_sent_message_failed_and_tells_the_inbox(
    testbot: TestBot,
) -> None:
    hub = testbot.hub
    await testbot.say("hello")
    conversation = await hub.store.get_conversation(await testbot.conversation_id())
    assert conversation is not None
    sent, _ = await hub.conversations.post(
        conversation, Reply(text="We shipped it.", sender=Sender.AGENT)
    )
    await hub.outbox.drain()
    feed = hub.bus.subscribe()
    assert sent.id is not None

    assert await hub.delivery_failed(sent.id, "550 5.1.1 mailbox unknown") is True

    message = await hub.store.get_message(sent.id)
    assert message is not None
    assert (message.delivery, message.delivery_error) == (
        Delivery.FAILED,
        "550 5.1.1 mailbox unknown",
    )
    event = feed.queue.get_nowait()
    assert event.type == "message.delivery" and event.data["delivery"] == "failed"
    assert await hub.delivery_failed(999_999, "x") is False
