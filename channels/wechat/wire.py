"""What goes over the wire with WeChat: signatures, the XML of messages (read safely), safe
mode's AES envelope, and the passive reply written back.

WeChat signs every request: SHA-1 of the account's token, the timestamp and the nonce (and in
safe mode the <Encrypt> text), sorted and joined. A request whose signature is wrong is not
WeChat's (`Refused`, 403); one that can't be read is `Malformed` (400).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.parsers.expat import ExpatError

import xmltodict
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidAppIdException
from wechatpy.replies import TextReply
from wechatpy.utils import WeChatSigner

from channels import common

MAX_TEXT_BYTES = 2048  # one text message, passive or through the API
# The elements the hub reads: plain text in every message and event WeChat sends (others, such
# as ScanCodeInfo or SendPicsInfo, nest elements).
FLAT_FIELDS = (
    "ToUserName", "FromUserName", "CreateTime", "MsgType", "MsgId", "Content", "MediaId",
    "PicUrl", "Format", "Recognition", "ThumbMediaId", "Location_X", "Location_Y", "Scale",
    "Label", "Title", "Description", "Url", "Event", "EventKey", "Ticket", "Latitude",
    "Longitude", "Precision",
)  # fmt: skip
_DOCTYPE = re.compile(r"<!(DOCTYPE|ENTITY)", re.IGNORECASE)


class Refused(Exception):
    """Not from WeChat for this account: a wrong signature or app id (403)."""


class Malformed(Exception):
    """A request that can't be read (400)."""


def signature(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the parts sorted and joined (token, timestamp, nonce, and
    in safe mode the Encrypt text)."""
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def check_signature(given: str | None, *parts: str) -> None:
    # compared in constant time (wechatpy's check_signature uses !=)
    if not given or not hmac.compare_digest(given.encode(), signature(*parts).encode()):
        raise Refused("wrong signature")


@dataclass(frozen=True)
class Envelope:
    """A request's message as XML, and how to seal the answer (encrypted like the request)."""

    xml: str
    encrypted: bool
    nonce: str


def parse(xml: str) -> Any:
    """The wechatpy message or event; Malformed when the XML isn't one."""
    if _DOCTYPE.search(xml):  # WeChat never sends one; entity expansion is an attack
        raise Malformed("XML with a document type declaration is not accepted")
    try:
        message = parse_message(xml)
    except (ExpatError, KeyError, TypeError, AttributeError, ValueError) as e:
        raise Malformed(f"not a WeChat message: {type(e).__name__}: {e}") from e
    if message is None or not isinstance(message.source, str) or not message.source:
        raise Malformed("not a WeChat message: no FromUserName")
    for name in FLAT_FIELDS:  # a repeated or nested element of these is no message of WeChat's
        if not isinstance(message._data.get(name, ""), str | None):
            raise Malformed(f"not a WeChat message: <{name}> is not a single plain value")
    return message


def escape_cdata(text: str) -> str:
    """wechatpy writes text into CDATA as is: a "]]>" in it would end the section early."""
    return text.replace("]]>", "]]]]><![CDATA[>")


def split_text(text: str) -> list[str]:
    """Pieces of at most MAX_TEXT_BYTES UTF-8 bytes (what WeChat counts), cut at a line break
    where one is near."""
    return common.split_text(text, MAX_TEXT_BYTES, common.utf8_bytes)


def encrypted_part(xml: str) -> str:
    """The <Encrypt> text of a safe-mode request."""
    if _DOCTYPE.search(xml):
        raise Malformed("XML with a document type declaration is not accepted")
    try:
        fields = xmltodict.parse(xml).get("xml")
    except ExpatError as e:
        raise Malformed(f"not XML: {e}") from e
    encrypt = fields.get("Encrypt") if isinstance(fields, dict) else None
    if not isinstance(encrypt, str) or not encrypt:
        raise Malformed("a safe-mode message without <Encrypt>")
    return encrypt


def unseal(
    params: Mapping[str, str], body: bytes, token: str, crypto: WeChatCrypto | None
) -> Envelope:
    """The request's message XML, its signature checked (and decrypted in safe mode)."""
    timestamp, nonce = params.get("timestamp", ""), params.get("nonce", "")
    try:
        text = body.decode()
    except UnicodeDecodeError as e:
        raise Malformed("the body is not UTF-8") from e
    if params.get("encrypt_type") != "aes" or crypto is None:
        check_signature(params.get("signature"), token, timestamp, nonce)
        return Envelope(text, encrypted=False, nonce=nonce)
    encrypt = encrypted_part(text)
    msg_signature = params.get("msg_signature")
    check_signature(msg_signature, token, timestamp, nonce, encrypt)
    try:
        xml = crypto.decrypt_message({"Encrypt": encrypt}, msg_signature, timestamp, nonce)
    except InvalidAppIdException as e:
        raise Refused("the message is for another app_id") from e
    except Exception as e:  # bad base64, padding or length: cryptography's and struct's errors
        raise Malformed(f"the message can't be decrypted ({type(e).__name__})") from e
    return Envelope(str(xml), encrypted=True, nonce=nonce)


def seal(message: Any, envelope: Envelope, text: str, crypto: WeChatCrypto | None) -> str:
    """A passive text reply to `message`, encrypted when the request was."""
    reply = TextReply(source=message.target, target=message.source, content=escape_cdata(text))
    xml = reply.render()
    if envelope.encrypted and crypto is not None:
        return str(crypto.encrypt_message(xml, envelope.nonce))
    return str(xml)
