"""Sending email: one SMTP submission per message, errors turned into DeliveryError.

The outbox decides about retries from `DeliveryError.retryable`: a 4xx reply or a network or TLS
failure may pass, a 5xx reply (bad credentials, refused recipient, rejected message) will not.
Messages name the server and quote its reply; they never contain the password.
"""

from __future__ import annotations

import asyncio
import email.message
import ssl
from typing import Self

import aiosmtplib
from pydantic import BaseModel, ConfigDict, model_validator

from channels.base import DeliveryError


class SmtpSettings(BaseModel):
    """Where and how to submit mail: implicit TLS on 465 by default, STARTTLS on 587."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 465
    user: str | None = None
    password: str | None = None
    tls: bool = True  # implicit TLS from the first byte (port 465)
    starttls: bool = False  # upgrade a plain connection (port 587)
    ca_file: str | None = None  # an extra CA to trust: self-signed servers, tests
    verify: bool = True
    timeout: float = 30

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.tls and self.starttls:
            raise ValueError("tls (implicit, port 465) and starttls (port 587) exclude each other")
        return self


def client_tls_context(ca_file: str | None, verify: bool) -> ssl.SSLContext:
    """The system's trusted CAs plus `ca_file`; `verify` False accepts any certificate."""
    context = ssl.create_default_context()
    if ca_file:
        context.load_verify_locations(cafile=ca_file)
    if not verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


class _Submission(aiosmtplib.SMTP):
    """aiosmtplib's client, dropping its socket at once when done. Its own close waits for
    the server to answer the TLS close, and if the event loop ends first (a test, a shutdown)
    the socket is left open."""

    def close(self) -> None:
        if isinstance(self.transport, asyncio.Transport):
            self.transport.abort()  # after QUIT or an error there is nothing left to say
        super().close()


class SmtpSender:
    """Submits messages to one SMTP server."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self._server = f"SMTP server {settings.host}:{settings.port}"

    async def send(
        self,
        message: email.message.EmailMessage,
        sender: str | None = None,
        recipients: list[str] | None = None,
    ) -> None:
        """Submit `message`; sender and recipients default to its From and To/Cc/Bcc headers.

        Raises DeliveryError; when only some recipients are refused the others already have
        the message, so that error is not retryable (a retry would send it to them twice).
        """
        s = self.settings
        # A new connection per message: a hub sends a few messages a minute per mailbox, and
        # nothing can go stale between sends (servers drop idle sessions after a few minutes).
        client = _Submission(
            hostname=s.host,
            port=s.port,
            username=s.user,
            password=s.password,
            use_tls=s.tls,
            start_tls=s.starttls,  # False, not None: never upgrade unless configured
            tls_context=client_tls_context(s.ca_file, s.verify) if s.tls or s.starttls else None,
            timeout=s.timeout,
        )
        try:
            async with client:
                refused, _ = await client.send_message(
                    message, sender=sender, recipients=recipients
                )
        except aiosmtplib.SMTPRecipientsRefused as e:
            retryable = all(400 <= r.code < 500 for r in e.recipients)
            who = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in e.recipients)
            raise DeliveryError(f"{self._server} refused every recipient ({who})", retryable) from e
        except aiosmtplib.SMTPResponseException as e:
            raise DeliveryError(self._describe(e), retryable=400 <= e.code < 500) from e
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            # refused or dropped connections, timeouts, TLS handshake and certificate errors
            raise DeliveryError(self._describe(e), retryable=True) from e
        finally:
            await asyncio.sleep(0)  # the aborted socket closes in the next loop iteration
        if refused:
            who = "; ".join(f"{rcpt}: {r.code} {r.message}" for rcpt, r in refused.items())
            raise DeliveryError(
                f"{self._server} accepted the message but refused some recipients ({who})",
                retryable=False,
            )

    def _describe(self, error: Exception) -> str:
        """What failed, for the agent and the log, without the password."""
        if isinstance(error, aiosmtplib.SMTPResponseException):
            step = {
                aiosmtplib.SMTPAuthenticationError: "refused the login",
                aiosmtplib.SMTPSenderRefused: "refused the sender",
                aiosmtplib.SMTPRecipientRefused: "refused the recipient",
                aiosmtplib.SMTPDataError: "rejected the message",
            }.get(type(error), "answered")
            text = f"{self._server} {step}: {error.code} {error.message}"
        else:
            text = f"{self._server}: {type(error).__name__}: {error}"
        if self.settings.password:
            text = text.replace(self.settings.password, "***")
        return text
