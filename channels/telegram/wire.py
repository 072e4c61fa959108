"""What goes over the wire with Telegram, as pure functions over aiogram's types: updates read
(which chat, which file, whether a group message is meant for the bot) and the Bot API methods
that deliver a stored message (its text in parts, its buttons, its files)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from aiogram import Bot
from aiogram.enums import ChatType
from aiogram.methods import SendDocument, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import (
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
    User,
)
from aiogram.types.update import UpdateTypeLookupError
from pydantic import ValidationError

from channels import common
from channels.base import DeliveryError
from hub.messages import Button, Kind, Outbound, Verified

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TEXT_LIMIT = 4096  # sendMessage's limit, in UTF-16 code units
CALLBACK_DATA_LIMIT = 64  # bytes
BUTTON_KEY = "#"  # starts a callback_data that stands for a longer payload
START = re.compile(r"^/start(?:@\w+)?(?:\s+(\S+))?\s*$")  # with a deep link's parameter


@dataclass(frozen=True)
class Media:
    """A file in a customer's message, before it is fetched from Telegram."""

    kind: Kind
    file_id: str
    name: str | None
    mime_type: str | None


def parse_update(raw: dict[str, Any], bot: Bot | None) -> tuple[Update | None, str]:
    """The update as aiogram reads it, or None and what is wrong with it (Telegram's own
    documentation samples lack fields aiogram requires; a newer Bot API may send update
    types this aiogram doesn't know)."""
    try:
        update = Update.model_validate(raw, context={"bot": bot})
        update.event_type  # noqa: B018 - raises for an unknown update type
    except ValidationError as e:
        return None, f"invalid update: {common.problems(e, whole='update', most=5)}"
    except UpdateTypeLookupError:
        return None, "unknown update type"
    return update, ""


def message_key(message: Message) -> str:
    """A message id is only unique within its chat."""
    return f"{message.chat.id}:{message.message_id}"


def own_phone(message: Message) -> Verified | None:
    """The customer's phone number when they shared their own contact card in a private chat
    (Telegram checked it: the card's user is the sender); another's card proves nothing."""
    shared, user = message.contact, message.from_user
    if shared is None or user is None or message.chat.type != ChatType.PRIVATE:
        return None
    if shared.user_id != user.id:
        return None
    digits = shared.phone_number.strip().lstrip("+")  # Telegram sends it without "+" at times
    return Verified(phone=f"+{digits}")


def telegram_context(message: Message) -> dict[str, Any]:
    """What an agent may want to know about where a message came from."""
    user = message.from_user
    context = {
        "chat_type": str(message.chat.type),
        "chat_title": message.chat.title,
        "from_id": user.id if user else None,
        "username": user.username if user else None,
        "language_code": user.language_code if user else None,
    }
    return {k: v for k, v in context.items() if v is not None}


def media_of(message: Message) -> Media | None:
    if message.photo:
        largest = message.photo[-1]  # sizes come smallest first
        return Media(Kind.IMAGE, largest.file_id, None, "image/jpeg")
    if message.document:
        d = message.document
        return Media(Kind.FILE, d.file_id, d.file_name, d.mime_type)
    if message.voice:
        return Media(Kind.AUDIO, message.voice.file_id, None, message.voice.mime_type)
    if message.audio:
        a = message.audio
        return Media(Kind.AUDIO, a.file_id, a.file_name, a.mime_type)
    if message.video:
        v = message.video
        return Media(Kind.VIDEO, v.file_id, v.file_name, v.mime_type)
    return None


def addresses_bot(message: Message, me: User) -> bool:
    """A group message is meant for the bot when it mentions it, replies to one of its
    messages or is a /command@bot (what Telegram's privacy mode lets through, too)."""
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == me.id:
        return True
    text = message.text if message.text is not None else (message.caption or "")
    handle = f"@{me.username or ''}".lower()
    for entity in message.entities or message.caption_entities or ():
        value = entity.extract_from(text).lower()
        if entity.type == "mention" and value == handle:
            return True
        if entity.type == "bot_command" and value.endswith(handle):
            return True
        if entity.type == "text_mention" and entity.user is not None and entity.user.id == me.id:
            return True
    return False


def without_mentions(text: str, username: str | None) -> str:
    """The text without the bot's @handle: "@bot where is my order" -> "where is my order",
    and "/human@bot" -> "/human", an intent payload like the ones buttons carry."""
    if not username:
        return text
    handle = re.escape(username)
    text = re.sub(rf"^(/\w+)@{handle}(?!\w)", r"\1", text, flags=re.IGNORECASE)
    text = re.sub(rf"(?<![\w@])@{handle}(?!\w)", "", text, flags=re.IGNORECASE)
    return re.sub(r"[ \t]{2,}", " ", text).strip()


def button_title(query: CallbackQuery) -> str | None:
    """The title of the pressed button, from the keyboard of the message it sits under
    (not known for messages too old for the bot to see)."""
    markup = getattr(query.message, "reply_markup", None)
    if not isinstance(markup, InlineKeyboardMarkup):
        return None
    for row in markup.inline_keyboard:
        for button in row:
            if button.callback_data == query.data:
                return button.text
    return None


def callback_data(payload: str) -> str:
    """A button's callback_data: the payload itself when it fits Telegram's 64 bytes, else
    a key made from it (resolved again by `TelegramChannel.payload_of`)."""
    if 0 < len(payload.encode()) <= CALLBACK_DATA_LIMIT and not payload.startswith(BUTTON_KEY):
        return payload
    digest = hashlib.sha256(payload.encode()).digest()[:24]
    return BUTTON_KEY + base64.urlsafe_b64encode(digest).decode()


def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup | None:
    if not buttons:
        return None
    rows = [
        [InlineKeyboardButton(text=b.title, callback_data=callback_data(b.payload))]
        for b in buttons
    ]
    return InlineKeyboardMarkup(inline_keyboard=rows)


def split_text(text: str) -> list[str]:
    """Parts of at most TEXT_LIMIT UTF-16 code units (what Telegram counts), cut at a line
    break, else a space, when one is near."""
    return common.split_text(text, TEXT_LIMIT, common.utf16_units)


def telegram_methods(message: Outbound) -> list[TelegramMethod[Any]]:
    """The Bot API calls that deliver one message, in order."""
    try:
        chat_id = int(message.recipient_id)
    except ValueError:
        raise DeliveryError(
            f"{message.recipient_id!r} is not a Telegram chat id", retryable=False
        ) from None
    markup = keyboard(message.buttons)
    texts = split_text(message.text)
    if markup is not None and not texts:
        texts = ["…"]  # buttons need a message to sit under
    methods: list[TelegramMethod[Any]] = [SendMessage(chat_id=chat_id, text=t) for t in texts[:-1]]
    if texts:
        methods.append(SendMessage(chat_id=chat_id, text=texts[-1], reply_markup=markup))
    for attachment in message.attachments:
        if not attachment.url.startswith(("https://", "http://")):
            raise DeliveryError(
                f"attachment {attachment.url!r}: Telegram fetches files by absolute URL",
                retryable=False,
            )
        if attachment.kind == Kind.IMAGE:
            methods.append(SendPhoto(chat_id=chat_id, photo=attachment.url))
        else:
            methods.append(SendDocument(chat_id=chat_id, document=attachment.url))
    return methods
