"""Which conversation a mail belongs to, and the headers that keep our replies in its thread.

Mail clients thread by Message-ID, In-Reply-To and References, and do it badly often enough
(Outlook rewrites In-Reply-To, some clients drop References, people reply from another address)
that the hub looks in this order, first match wins:

1. In-Reply-To: one of our own Message-IDs (it names the conversation), or a customer's mail
   we stored;
2. References, newest (rightmost) first, the same way;
3. the reply token in the address the customer wrote to (`support+<token>@example.com`, which
   our Reply-To carries);
4. the same sender writing with the same subject once `Re:`/`回复:`/`Fwd:`... are removed.

No match: a new conversation.

Our Message-IDs and reply tokens name the hub's message and conversation, signed with a key
kept in the channel's state, so a stranger can't slip mail into someone else's conversation by
guessing an id.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

MAX_REFERENCES = 20  # References kept on our replies: the first (the thread's root) and the last
_OURS = re.compile(r"^<kefu\.(\d+)\.(\d+)\.([0-9a-f]{16})@[^>]+>$")
_TOKEN = re.compile(r"^c(\d+)\.([0-9a-f]{12})$")


def new_key() -> str:
    return secrets.token_hex(32)


@dataclass(frozen=True)
class Ids:
    """Our Message-IDs and reply tokens for one mailbox (`address`), signed with `key`."""

    address: str
    key: str

    @property
    def domain(self) -> str:
        return self.address.rpartition("@")[2] or "kefu.invalid"

    def _sign(self, text: str, size: int) -> str:
        return hmac.new(self.key.encode(), text.encode(), hashlib.sha256).hexdigest()[:size]

    def message_id(self, message_id: int, conversation_id: int) -> str:
        """The Message-ID of the hub's message `message_id`: the same on every retry."""
        core = f"{message_id}.{conversation_id}"
        return f"<kefu.{core}.{self._sign(core, 16)}@{self.domain}>"

    def parse_message_id(self, value: str) -> tuple[int, int] | None:
        """(hub message id, conversation id) of one of our Message-IDs; None otherwise."""
        found = _OURS.match(value.strip())
        if found is None:
            return None
        message_id, conversation_id, signature = found.groups()
        core = f"{message_id}.{conversation_id}"
        if not hmac.compare_digest(signature, self._sign(core, 16)):
            return None
        return int(message_id), int(conversation_id)

    def reply_address(self, conversation_id: int) -> str:
        """`support+c42.<sig>@example.com`: replies to it name the conversation."""
        local, _, domain = self.address.partition("@")
        token = f"c{conversation_id}.{self._sign(f'c{conversation_id}', 12)}"
        return f"{local}+{token}@{domain}"

    def token_conversation(self, address: str) -> int | None:
        """The conversation a reply address names (ours, correctly signed); None otherwise."""
        local, _, domain = address.strip().lower().partition("@")
        mine_local, _, mine_domain = self.address.lower().partition("@")
        base, plus, token = local.partition("+")
        if not plus or base != mine_local or domain != mine_domain:
            return None
        found = _TOKEN.match(token)
        if found is None:
            return None
        conversation_id, signature = found.groups()
        expected = self._sign(f"c{conversation_id}", 12)
        return int(conversation_id) if hmac.compare_digest(signature, expected) else None


def subject_key(sender: str, normalized_subject: str) -> str:
    """The state key under which a sender's thread with this subject is remembered."""
    digest = hashlib.sha256(f"{sender.lower()}\n{normalized_subject}".encode()).hexdigest()
    return f"subject:{digest[:40]}"


async def find_conversation(
    ids: Ids,
    in_reply_to: Iterable[str],
    references: Iterable[str],
    recipients: Iterable[str],
    subject_conversation: Callable[[], Awaitable[int | None]],
    stored_conversation: Callable[[str], Awaitable[int | None]],
) -> tuple[int | None, str]:
    """(conversation id or None, how it was found). `stored_conversation(message_id)` finds a
    customer mail we stored; `subject_conversation()` the sender's thread with this subject."""

    async def by_id(message_id: str) -> int | None:
        ours = ids.parse_message_id(message_id)
        if ours is not None:
            return ours[1]
        return await stored_conversation(message_id)

    for message_id in in_reply_to:
        found = await by_id(message_id)
        if found is not None:
            return found, "in-reply-to"
    for message_id in reversed(list(references)):
        found = await by_id(message_id)
        if found is not None:
            return found, "references"
    for address in recipients:
        found = ids.token_conversation(address)
        if found is not None:
            return found, "reply-token"
    found = await subject_conversation()
    if found is not None:
        return found, "subject"
    return None, "new"


def references_for(previous: list[str], parent: str | None) -> list[str]:
    """The References of a reply: the thread's ids and the parent, at most MAX_REFERENCES
    (the root kept, the oldest after it dropped, as RFC 5322 suggests)."""
    chain = [r for r in previous if r != parent] + ([parent] if parent else [])
    if len(chain) > MAX_REFERENCES:
        chain = chain[:1] + chain[-(MAX_REFERENCES - 1) :]
    return chain
