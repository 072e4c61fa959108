"""The email channel: a support mailbox read over IMAP, answered over SMTP (docs/channels/email.md).

    - name: support-mail
      type: email
      address: support@example.com
      imap: {host: imap.example.com, port: 993, user: ..., password: ${IMAP_PASSWORD}, tls: true}
      smtp: {host: smtp.example.com, port: 465, user: ..., password: ${SMTP_PASSWORD}, tls: true}

Each mail becomes one customer message: its new text (quotes and signature stripped; the
whole text and the original .eml kept), its attachments in the media store, in the
conversation its thread belongs to (threads.py). Replies, the bot's and the agents', leave
through the outbox as mail in the same thread: our Message-ID, In-Reply-To, References, a `Re:`
subject, a Reply-To that names the conversation.

No mail loops (RFC 3834): mail from machines (auto-replies, lists, bounces; content.py says
which) is stored for the inbox but never answered; the bot's own mail says Auto-Submitted:
auto-replied; the bot answers one sender at most `auto_reply_limit` times an hour. A bounce of
one of our mails marks that message failed, which the agent sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.policy
import email.utils
import hashlib
import logging
import re
import time
from email.message import EmailMessage
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from channels.base import Capabilities, Channel, ChannelConfigError
from channels.common import kind_of
from channels.email.auth import sender_authenticated
from channels.email.content import ParsedMail, normalize_subject, parse_mail, reply_text
from channels.email.imap import ImapInbox, ImapSettings
from channels.email.smtp import SmtpSender, SmtpSettings
from channels.email.threads import (
    Ids,
    find_conversation,
    new_key,
    references_for,
    subject_key,
)
from hub.messages import Attachment, Inbound, Kind, Outbound, Sender, Verified
from hub.ports import MediaTooLarge

log = logging.getLogger(__name__)

MAX_ID = 255  # the store's channel_message_id column
MAX_ORIGINAL = 100_000  # characters of a mail's whole text kept beside the stripped one
REPLY_PREFIX = re.compile(r"^(re|aw|sv|回复|回覆|答复)\s*[:：]", re.IGNORECASE)


class EmailOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    address: str = ""  # the support address: our From, and the mailbox customers write to
    from_name: str | None = None  # the From display name, e.g. "Kefu Shop Support"
    imap: ImapSettings | None = None
    smtp: SmtpSettings | None = None
    reply_token: bool = True  # Reply-To: support+<token>@...: replies name their conversation
    auto_reply_limit: int = Field(default=10, ge=0)  # bot answers per sender per hour
    subject: str = "Your message to us"  # the subject of a thread that has none
    public_url: str | None = None  # the hub's public URL, for links to files under /media
    # when the From address counts as verified (merges contacts into one customer): auth.py
    sender_verified: Literal["authenticated", "always", "never"] = "authenticated"
    authserv_id: str | None = None  # believe only this server's Authentication-Results

    @field_validator("address")
    @classmethod
    def _address(cls, value: str) -> str:
        if value and "@" not in value:
            raise ValueError("must be an email address, e.g. support@example.com")
        return value.strip().lower()


class EmailChannel(Channel[EmailOptions]):
    type: ClassVar[str] = "email"
    capabilities: ClassVar[Capabilities] = Capabilities(buttons=False, images=False)
    Options = EmailOptions

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids: Ids | None = None
        self._inbox: ImapInbox | None = None
        self._task: asyncio.Task[None] | None = None

    # ---- life cycle ----------------------------------------------------------------------

    async def start(self) -> None:
        o = self.options
        missing = [k for k in ("address", "imap", "smtp") if not getattr(o, k)]
        if missing:
            raise ChannelConfigError(f"channel {self.name!r} (email): set {', '.join(missing)}")
        assert o.imap is not None
        self._inbox = ImapInbox(o.imap, _State(self), self.take, name=self.name)
        self._task = asyncio.create_task(self._inbox.run(), name=f"imap {self.name}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._inbox is not None:
            await self._inbox.close()

    def problem(self) -> str | None:
        inbox = self._inbox
        if inbox is None or inbox.connected:
            return None
        return inbox.last_error or "not connected to the IMAP server yet"

    async def ids(self) -> Ids:
        """Our signing key, made once and kept in the channel's state (every process, every
        restart signs the same way)."""
        if self._ids is None:
            saved = await self.receiver.load_state(self.name, "key")
            if saved is None:
                saved = {"key": new_key()}
                await self.receiver.save_state(self.name, "key", saved)
            self._ids = Ids(self.options.address, str(saved["key"]))
        return self._ids

    # ---- mail in -------------------------------------------------------------------------

    async def take(self, raw: bytes) -> None:
        """One mail from the mailbox. Returns once it is stored (the IMAP side then marks it
        seen); raises when it can't be, so it is fetched again."""
        mail = parse_mail(raw)
        ids = await self.ids()
        sender = mail.from_address or ""
        if sender == self.options.address or (
            mail.message_id and ids.parse_message_id(mail.message_id)
        ):
            log.info("email %s: our own mail came back, skipped", self.name)
            return
        if mail.bounce is not None:
            await self.bounced(mail, ids)
            return
        if not sender:
            log.warning("email %s: mail %s has no sender, skipped", self.name, mail.message_id)
            return
        message_id = channel_message_id(mail, raw)
        conversation_id, how = await find_conversation(
            ids,
            mail.in_reply_to,
            mail.references,
            (*mail.to, *mail.cc),
            lambda: self._subject_conversation(sender, mail.subject),
            lambda mid: self.receiver.conversation_of(self.name, mid[:MAX_ID]),
        )
        automated = mail.automated or await self._too_many(sender)
        inbound = Inbound(
            channel=self.name,
            sender_id=sender,
            sender_name=mail.from_name,
            channel_message_id=message_id,
            text=said(mail),
            kind=Kind.TEXT,
            conversation_id=conversation_id,
            new_conversation=conversation_id is None,
            automated=automated is not None,
            payload={"email": await self._details(mail, raw, how, automated)},
            verified=self.verified_sender(raw, sender),
        )
        inbound = await self._with_attachments(inbound, mail)

        async def stored(_: int) -> None:  # before the bot's replies go out: they need it
            await self._remember(mail, message_id, sender)

        await self.receiver.receive(inbound, on_stored=stored)

    def verified_sender(self, raw: bytes, sender: str) -> Verified | None:
        """The sender's address, when it can be believed (`sender_verified`, auth.py)."""
        trust = self.options.sender_verified
        if trust == "always" or (
            trust == "authenticated" and sender_authenticated(raw, sender, self.options.authserv_id)
        ):
            return Verified(email=sender)
        return None

    async def bounced(self, mail: ParsedMail, ids: Ids) -> None:
        """A delivery report. A permanent failure of one of our mails marks it failed; the
        rest (delays, read receipts, complaints, reports about mail we can't place) is only
        logged: it is not a customer speaking."""
        bounce = mail.bounce
        assert bounce is not None
        ours = [ids.parse_message_id(m) for m in bounce.original_message_ids]
        found = [o for o in ours if o is not None]
        if bounce.kind != "bounce" or not found:
            log.info(
                "email %s: %s report (%s) for %s, nothing to mark",
                self.name,
                bounce.kind,
                bounce.status,
                ", ".join(bounce.original_message_ids) or "unknown mail",
            )
            return
        reason = " ".join(
            p for p in (bounce.status, bounce.diagnostic or "the mail could not be delivered") if p
        )
        for message_id, _ in found:
            await self.receiver.delivery_failed(message_id, f"bounced: {reason}"[:500])

    async def _subject_conversation(self, sender: str, subject: str) -> int | None:
        normalized = normalize_subject(subject)
        if not normalized:
            return None
        saved = await self.receiver.load_state(self.name, subject_key(sender, normalized))
        return int(saved["conversation"]) if saved else None

    async def _too_many(self, sender: str) -> str | None:
        """The loop guard: more than `auto_reply_limit` mails from one sender in an hour are
        stored but not answered by the bot."""
        key = "rate:" + hashlib.sha256(sender.encode()).hexdigest()[:40]
        now = time.time()
        saved = await self.receiver.load_state(self.name, key) or {}
        start, count = float(saved.get("start", 0.0)), int(saved.get("count", 0))
        if now - start >= 3600:
            start, count = now, 0
        count += 1
        await self.receiver.save_state(self.name, key, {"start": start, "count": count})
        if count > self.options.auto_reply_limit:
            return f"more than {self.options.auto_reply_limit} mails from {sender} in an hour"
        return None

    async def _details(
        self, mail: ParsedMail, raw: bytes, how: str, automated: str | None
    ) -> dict[str, Any]:
        details: dict[str, Any] = {
            "message_id": mail.message_id,
            "subject": mail.subject,
            "from": mail.from_address,
            "to": list(mail.to),
            "cc": list(mail.cc),
            "in_reply_to": list(mail.in_reply_to),
            "references": list(mail.references),
            "thread": how,  # how the conversation was found (threads.py)
            "date": mail.date.isoformat() if mail.date else None,
            "original_text": mail.text[:MAX_ORIGINAL],
        }
        if automated:
            details["automated"] = automated
        try:
            details["raw"] = await self.receiver.save_media(
                raw, name="original.eml", mime_type="message/rfc822"
            )
        except MediaTooLarge as e:
            details["raw_error"] = str(e)
        return details

    async def _with_attachments(self, inbound: Inbound, mail: ParsedMail) -> Inbound:
        """Attachments kept in the media store; one that can't be kept leaves a note."""
        kept: list[Attachment] = []
        problems: list[str] = []
        for part in mail.attachments:
            try:
                url = await self.receiver.save_media(
                    part.data, name=part.name, mime_type=part.mime_type
                )
            except MediaTooLarge as e:
                problems.append(f"{part.name or 'attachment'}: {e}")
                continue
            kind = kind_of(part.mime_type)
            kept.append(Attachment(kind=kind, url=url, name=part.name, mime_type=part.mime_type))
        update: dict[str, Any] = {"attachments": tuple(kept)}
        if kept and not inbound.text:
            update["kind"] = kept[0].kind
        if problems:
            email_details = {**inbound.payload["email"], "attachments_not_kept": problems}
            update["payload"] = {**inbound.payload, "email": email_details}
        return inbound.model_copy(update=update)

    async def _remember(self, mail: ParsedMail, message_id: str, sender: str) -> None:
        """The thread's headers for our replies, and the sender's subject for threading."""
        conversation_id = await self.receiver.conversation_of(self.name, message_id)
        if conversation_id is None:
            return
        key = f"thread:{conversation_id}"
        thread = await self.receiver.load_state(self.name, key) or {}
        thread.setdefault("subject", mail.subject)
        thread["references"] = references_for(list(thread.get("references", [])), mail.message_id)
        thread["parent"] = mail.message_id
        await self.receiver.save_state(self.name, key, thread)
        normalized = normalize_subject(mail.subject)
        if normalized:
            await self.receiver.save_state(
                self.name, subject_key(sender, normalized), {"conversation": conversation_id}
            )

    # ---- mail out ------------------------------------------------------------------------

    async def send(self, message: Outbound) -> None:
        assert self.options.smtp is not None, "send() before start()"
        mail = await self.compose(message)
        await SmtpSender(self.options.smtp).send(mail)
        key = f"thread:{message.conversation_id}"
        thread = await self.receiver.load_state(self.name, key) or {}
        thread["references"] = references_for(
            list(thread.get("references", [])), str(mail["Message-ID"])
        )
        await self.receiver.save_state(self.name, key, thread)

    async def compose(self, message: Outbound) -> EmailMessage:
        """The mail for a stored message, in its conversation's thread. The same message
        composes the same Message-ID, so a retried send is recognized as one mail."""
        o = self.options
        ids = await self.ids()
        thread = await self.receiver.load_state(self.name, f"thread:{message.conversation_id}")
        thread = thread or {}
        mail = EmailMessage(policy=email.policy.SMTP)
        mail["From"] = email.utils.formataddr((o.from_name or "", o.address))
        mail["To"] = message.recipient_id
        mail["Subject"] = reply_subject(str(thread.get("subject") or o.subject))
        mail["Date"] = email.utils.format_datetime(message.created_at)
        mail["Message-ID"] = ids.message_id(message.message_id, message.conversation_id)
        parent = thread.get("parent")
        if parent:
            mail["In-Reply-To"] = parent
        references = [r for r in thread.get("references", []) if r]
        if references:
            mail["References"] = " ".join(references)
        if o.reply_token:
            mail["Reply-To"] = email.utils.formataddr(
                (o.from_name or "", ids.reply_address(message.conversation_id))
            )
        if message.sender != Sender.AGENT:  # the bot's and the hub's mail is automatic
            mail["Auto-Submitted"] = "auto-replied"
            mail["X-Auto-Response-Suppress"] = "All"  # no out-of-office answers to it
        mail.set_content(self.body(message))
        return mail

    def body(self, message: Outbound) -> str:
        links = [self._absolute(a.url) for a in message.attachments]
        return "\n\n".join(t for t in (message.text, "\n".join(links)) if t) + "\n"

    def _absolute(self, url: str) -> str:
        base = self.options.public_url
        return base.rstrip("/") + url if base and url.startswith("/") else url


class _State:
    """The IMAP side's state (folder UIDs) in the hub's channel state."""

    def __init__(self, channel: EmailChannel) -> None:
        self.channel = channel

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.channel.receiver.load_state(self.channel.name, key)

    async def put(self, key: str, value: dict[str, Any]) -> None:
        await self.channel.receiver.save_state(self.channel.name, key, value)


def said(mail: ParsedMail) -> str:
    """What the customer wrote in this mail: the reply without the quoted thread and the
    signature; the whole text when stripping leaves nothing."""
    text = reply_text(mail.text).strip()
    return text or mail.text.strip()


def channel_message_id(mail: ParsedMail, raw: bytes) -> str:
    """The mail's Message-ID (what dedupes a mail fetched twice); one made from its bytes when
    it has none; a hash when it is too long to store."""
    message_id = mail.message_id or f"<{hashlib.sha256(raw).hexdigest()}@kefu.no-message-id>"
    if len(message_id) > MAX_ID:
        message_id = f"<{hashlib.sha256(message_id.encode()).hexdigest()}@kefu.long-message-id>"
    return message_id


def reply_subject(subject: str) -> str:
    """`Re: <subject>`, as mail clients do it: a subject that already starts with a reply
    prefix (Re:, 回复:, 答复:) is kept, so prefixes don't stack."""
    stripped = " ".join(subject.split())
    if REPLY_PREFIX.match(stripped):
        return stripped
    return f"Re: {stripped}" if stripped else "Re:"
