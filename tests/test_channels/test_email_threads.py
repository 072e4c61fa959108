"""Threading rules of the email channel (channels/email/threads.py), without servers."""

from __future__ import annotations

import pytest

from channels.email.threads import Ids, find_conversation, references_for, subject_key

IDS = Ids("support@example.com", "k" * 64)


def test_our_message_ids_name_message_and_conversation_and_are_signed() -> None:
    mid = IDS.message_id(17, 42)
    assert mid.startswith("<kefu.17.42.") and mid.endswith("@example.com>")
    assert IDS.message_id(17, 42) == mid  # a retried send is the same mail
    assert IDS.parse_message_id(mid) == (17, 42)
    assert IDS.parse_message_id(mid.replace(".42.", ".43.")) is None  # forged: wrong signature
    assert Ids("support@example.com", "other-key").parse_message_id(mid) is None
    assert IDS.parse_message_id("<CAF=abc@mail.gmail.com>") is None


def test_reply_tokens_are_plus_addresses_of_the_support_address() -> None:
    address = IDS.reply_address(42)
    assert address.startswith("support+c42.") and address.endswith("@example.com")
    assert IDS.token_conversation(address) == 42
    assert IDS.token_conversation(address.upper()) == 42  # mail systems may change case
    assert IDS.token_conversation(address.replace("c42.", "c41.")) is None
    assert IDS.token_conversation("support@example.com") is None
    assert IDS.token_conversation(address.replace("example.com", "evil.test")) is None


async def find(
    in_reply_to: tuple[str, ...] = (),
    references: tuple[str, ...] = (),
    recipients: tuple[str, ...] = (),
    by_subject: int | None = None,
    stored: dict[str, int] | None = None,
) -> tuple[int | None, str]:
    async def subject() -> int | None:
        return by_subject

    async def lookup(message_id: str) -> int | None:
        return (stored or {}).get(message_id)

    return await find_conversation(IDS, in_reply_to, references, recipients, subject, lookup)


async def test_in_reply_to_wins_then_references_right_to_left() -> None:
    ours = IDS.message_id(5, 7)
    assert await find(in_reply_to=(ours,), references=("<a@x>",), by_subject=9) == (
        7,
        "in-reply-to",
    )
    stored = {"<a@x>": 3, "<b@x>": 4}
    assert await find(
        in_reply_to=("<unknown@x>",), references=("<a@x>", "<b@x>"), stored=stored
    ) == (
        4,
        "references",
    )


async def test_outlook_rewriting_in_reply_to_still_threads() -> None:
    """Outlook answers with an In-Reply-To of its own making, but keeps References (or, when
    it drops those too, the customer wrote to our Reply-To address)."""
    ours = IDS.message_id(11, 8)
    assert await find(in_reply_to=("<DB7PR@outlook.com>",), references=(ours,)) == (
        8,
        "references",
    )
    assert await find(in_reply_to=("<DB7PR@outlook.com>",), recipients=(IDS.reply_address(8),)) == (
        8,
        "reply-token",
    )


@pytest.mark.parametrize("subject_hit", [12, None])
async def test_subject_and_sender_is_the_last_resort(subject_hit: int | None) -> None:
    expected = (12, "subject") if subject_hit else (None, "new")
    assert await find(by_subject=subject_hit) == expected


def test_subject_keys_depend_on_sender_and_subject() -> None:
    assert subject_key("Ann@Example.com", "order 5") == subject_key("ann@example.com", "order 5")
    assert subject_key("ann@example.com", "order 5") != subject_key("bob@example.com", "order 5")


def test_references_keep_the_root_and_the_newest() -> None:
    chain = [f"<{i}@x>" for i in range(30)]
    kept = references_for(chain, "<new@x>")
    assert len(kept) == 20 and kept[0] == "<0@x>" and kept[-1] == "<new@x>"
    assert references_for([], "<a@x>") == ["<a@x>"]
    assert references_for(["<a@x>"], "<a@x>") == ["<a@x>"]
