"""Receiving email: read one IMAP folder, hand each new message to the hub once and in order.

Progress lives in a StateStore as `{"uidvalidity": int, "last_uid": int}` under
`imap:<folder>` and advances only after the handler returned, so a crash or a failing handler
means the message is fetched again, never lost; the hub dedupes by Message-ID. Messages are
flagged \\Seen after handling, so people looking at the same mailbox see what the hub took.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol, Self

import aioimaplib
from pydantic import BaseModel, ConfigDict, Field, model_validator

from channels.email.smtp import client_tls_context

log = logging.getLogger(__name__)

IDLE_MAX = 29 * 60  # RFC 2177: servers may drop a client idling for 30 minutes


class ImapSettings(BaseModel):
    """The mailbox to read: implicit TLS on 993 by default, STARTTLS on 143."""

    model_config = ConfigDict(extra="forbid")

    host: str
    port: int = 993
    user: str
    password: str
    tls: bool = True
    starttls: bool = False
    ca_file: str | None = None  # an extra CA to trust: self-signed servers, tests
    verify: bool = True
    folder: str = "INBOX"
    idle: bool = True  # use IDLE when the server offers it; else poll
    # Seconds between polls; also how long one IDLE lasts before it is issued again.
    poll_interval: float = Field(60.0, gt=0)
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _one_tls_mode(self) -> Self:
        if self.tls and self.starttls:
            raise ValueError("tls (implicit, port 993) and starttls (port 143) exclude each other")
        return self


class StateStore(Protocol):
    """Where the inbox keeps its progress between runs (the hub's channel state)."""

    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, value: dict[str, Any]) -> None: ...


class ImapError(Exception):
    """The server refused a command or the connection broke."""


class ImapInbox:
    """Fetches new messages of one folder and passes their raw bytes to `handle`.

    `run()` keeps doing so: IDLE when possible (mail arrives within a second), polling
    otherwise, reconnecting with exponential backoff (`retry_delay` doubling up to
    `max_retry_delay`). `last_error`, `connected` and `idling` are there for status pages.
    """

    FETCH_CHUNK = 50  # messages per FETCH: memory stays bounded in a big mailbox

    def __init__(
        self,
        settings: ImapSettings,
        state: StateStore,
        handle: Callable[[bytes], Awaitable[None]],
        name: str = "email",
        *,
        retry_delay: float = 1.0,
        max_retry_delay: float = 300.0,
    ) -> None:
        self.settings = settings
        self.state = state
        self.handle = handle
        self.name = name
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.last_error: str | None = None
        self.connected = False
        self.idling = False
        self._key = f"imap:{settings.folder}"
        self._server = f"IMAP server {settings.host}:{settings.port}"
        self._imap: Any = None  # aioimaplib.IMAP4 (untyped)
        self._lost = asyncio.Event()
        self._uidvalidity = 0
        self._uidnext = 1

    # --- the public loop ---------------------------------------------------------------------

    async def fetch_new(self) -> int:
        """Connect if needed and hand every new message to `handle`, oldest first; return how
        many were handled. A handler error ends the batch without advancing past that message.
        """
        try:
            if self._imap is None or self._lost.is_set():
                self._drop()
                await self._connect()
            handled = await self._fetch_batch()
        except BaseException as e:
            self._drop()  # after an error mid-command the session's state is unknown
            if isinstance(e, Exception):
                self.last_error = self._describe(e)
            raise
        return handled

    async def run(self) -> None:
        """Fetch, wait for new mail, repeat, until cancelled; errors are logged and retried."""
        delay = self.retry_delay
        try:
            while True:
                try:
                    while await self.fetch_new():  # until a batch is empty or stopped
                        pass
                    delay = self.retry_delay
                    await self._wait_for_mail()
                except Exception as e:
                    self.last_error = self._describe(e)
                    self._drop()
                    connection_trouble = isinstance(
                        e, OSError | TimeoutError | ImapError | aioimaplib.AioImapException
                    )
                    log.warning(
                        "%s: %s; retrying in %.1f s",
                        self.name,
                        self.last_error,
                        delay,
                        exc_info=not connection_trouble,
                    )
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, self.max_retry_delay)
        finally:
            await self.close()

    async def close(self) -> None:
        """Log out (briefly; a dead server doesn't hold us up) and drop the connection."""
        imap = self._imap
        if imap is not None and self.connected and not self._lost.is_set():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(min(self.settings.timeout, 5)):
                    if imap.has_pending_idle():
                        imap.idle_done()
                    await imap.logout()
        self._drop()
        await asyncio.sleep(0)  # the aborted socket closes in the next loop iteration

    # --- one batch ---------------------------------------------------------------------------

    async def _fetch_batch(self) -> int:
        # Dovecot and others update a session's view of the folder at the end of a command,
        # so a SEARCH alone can miss mail that came since the last one: NOOP first.
        self._ok(await self._call(self._imap.noop()))
        saved = await self.state.get(self._key)
        first_run = saved is None or saved.get("uidvalidity") != self._uidvalidity
        if saved is not None and first_run:
            log.warning(
                "%s: UIDVALIDITY of %s changed (%s -> %s): the folder was recreated; "
                "taking its unread messages again",
                self.name,
                self.settings.folder,
                saved.get("uidvalidity"),
                self._uidvalidity,
            )
        if first_run:
            # A new channel takes the unread mail, not the mailbox's whole history. Until this
            # batch is through, \Seen is the progress mark: handled messages aren't unread.
            uids = await self._search("UNSEEN")
        else:
            assert saved is not None
            last_uid = int(saved["last_uid"])
            # "n:*" always includes the highest message, even when its UID is below n
            uids = [u for u in await self._search("UID", f"{last_uid + 1}:*") if u > last_uid]

        handled = 0
        for start in range(0, len(uids), self.FETCH_CHUNK):
            for uid, raw in await self._fetch(uids[start : start + self.FETCH_CHUNK]):
                try:
                    await self.handle(raw)
                except Exception as e:
                    self.last_error = f"handling message UID {uid} failed: {e!r}"
                    log.exception("%s: handling message UID %s failed; will retry", self.name, uid)
                    return handled
                await self._mark_seen(uid)
                if not first_run:
                    await self._save(uid)
                handled += 1
        if first_run:
            await self._save(max([*uids, self._uidnext - 1]))
        self.last_error = None
        return handled

    async def _save(self, last_uid: int) -> None:
        await self.state.put(self._key, {"uidvalidity": self._uidvalidity, "last_uid": last_uid})

    async def _search(self, *criteria: str) -> list[int]:
        response = self._ok(await self._call(self._imap.uid_search(*criteria, charset=None)))
        return sorted({int(t) for line in response.lines[:-1] for t in line.split() if t.isdigit()})

    async def _fetch(self, uids: list[int]) -> list[tuple[int, bytes]]:
        # BODY.PEEK: fetching must not mark anything \Seen, only handling does. No overall
        # timeout: aioimaplib's own fails the FETCH when the server goes silent.
        command = self._imap.uid("fetch", ",".join(map(str, uids)), "(UID BODY.PEEK[])")
        response = self._ok(await self._call(command, timed=False))
        wanted = set(uids)
        return sorted((u, raw) for u, raw in parse_fetch(response.lines[:-1]) if u in wanted)

    async def _mark_seen(self, uid: int) -> None:
        response = await self._call(self._imap.uid("store", str(uid), "+FLAGS.SILENT", r"(\Seen)"))
        if response.result != "OK":  # a read-only folder: progress is in the state anyway
            log.warning("%s: could not flag UID %s \\Seen: %s", self.name, uid, _text(response))

    # --- waiting for mail --------------------------------------------------------------------

    async def _wait_for_mail(self) -> None:
        if self.settings.idle and self._imap.has_capability("IDLE"):
            await self._idle()
        else:
            await asyncio.sleep(self.settings.poll_interval)

    async def _idle(self) -> None:
        """IDLE until the server announces mail (EXISTS/RECENT) or the period ends. The period
        is capped by poll_interval, which also catches an announcement made while we were
        busy with the previous batch (aioimaplib drops those)."""
        imap = self._imap
        period = min(self.settings.poll_interval, IDLE_MAX)
        while not imap.protocol.idle_queue.empty():  # pushes left over from an earlier IDLE
            imap.protocol.idle_queue.get_nowait()
        idle = await self._call(imap.idle_start(timeout=period))  # ends after DONE
        self.idling = True
        try:
            while True:
                try:
                    lines = await self._call(imap.wait_server_push(period + 5), timed=False)
                except TimeoutError:
                    break
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break
                if any(line.startswith(b"BYE") for line in lines):
                    raise ImapError(f"{self._server} closed the connection: {lines!r}")
                if any(line.endswith((b"EXISTS", b"RECENT")) for line in lines):
                    break  # anything else ("OK Still here", flag changes) is not new mail
        finally:
            self.idling = False
        imap.idle_done()
        self._ok(await self._call(idle))

    # --- the connection ----------------------------------------------------------------------

    async def _connect(self) -> None:
        s = self.settings
        context = client_tls_context(s.ca_file, s.verify) if s.tls or s.starttls else None
        lost = self._lost = asyncio.Event()

        def on_lost(exc: Exception | None) -> None:
            lost.set()  # this connection's event: an old one closing late changes nothing
            if self._lost is lost:
                self.connected = self.idling = False

        self._imap = imap = aioimaplib.IMAP4(
            host=s.host,
            port=s.port,
            timeout=s.timeout,
            conn_lost_cb=on_lost,
            ssl_context=context if s.tls else None,
        )
        await imap.wait_hello_from_server()  # refused connections and TLS errors come here
        if s.starttls:
            assert context is not None
            await self._starttls(context)
        response = await self._call(imap.login(aioimaplib.quoted(s.user), s.password))
        if response.result != "OK":
            raise ImapError(f"{self._server} refused the login of {s.user}: {_text(response)}")
        response = await self._call(imap.select(aioimaplib.quoted(imap_utf7(s.folder))))
        if response.result != "OK":
            raise ImapError(f"{self._server} can't open {s.folder}: {_text(response)}")
        codes = b" ".join(line for line in response.lines if isinstance(line, bytes))
        if not (uidvalidity := re.search(rb"\[UIDVALIDITY (\d+)\]", codes)):
            raise ImapError(f"{self._server} gave no UIDVALIDITY for {s.folder}")
        self._uidvalidity = int(uidvalidity.group(1))
        uidnext = re.search(rb"\[UIDNEXT (\d+)\]", codes)
        self._uidnext = int(uidnext.group(1)) if uidnext else 1
        self.connected = True
        log.info("%s: connected to %s, folder %s", self.name, self._server, s.folder)

    async def _starttls(self, context: Any) -> None:
        """Upgrade the plain connection; aioimaplib has no STARTTLS of its own, so this swaps
        the transport under its protocol the way asyncio's start_tls is meant to be used."""
        protocol = self._imap.protocol
        if not self._imap.has_capability("STARTTLS"):
            raise ImapError(f"{self._server} does not offer STARTTLS")
        command = aioimaplib.Command("STARTTLS", protocol.new_tag(), loop=protocol.loop)
        self._ok(await self._call(protocol.execute(command)))
        async with asyncio.timeout(self.settings.timeout):
            protocol.transport = await asyncio.get_running_loop().start_tls(
                protocol.transport, protocol, context, server_hostname=self.settings.host
            )
        await self._call(protocol.capability())  # what was said before TLS can't be trusted

    async def _call(self, command: Awaitable[Any], timed: bool = True) -> Any:
        """Await one aioimaplib command, failing at once when the connection drops (aioimaplib
        would wait for its timeout) and, if `timed`, after the settings' timeout."""
        task = asyncio.ensure_future(command)
        lost = asyncio.ensure_future(self._lost.wait())
        try:
            async with asyncio.timeout(self.settings.timeout if timed else None):
                await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            lost.cancel()
            if not task.done():
                task.cancel()
        if task.done() and not task.cancelled():
            return task.result()
        raise ImapError(f"lost the connection to {self._server}")

    def _drop(self) -> None:
        """Forget the connection at once: close the socket and cancel aioimaplib's tasks."""
        imap, self._imap = self._imap, None
        self.connected = self.idling = False
        if imap is None:
            return
        for task in (imap._client_task, *imap.tasks, *imap.protocol.tasks):
            task.cancel()
        if imap.protocol.transport is not None:
            # abort, not close: a TLS close waits for the server's answer, and if the event
            # loop ends first the socket is left open
            imap.protocol.transport.abort()

    def _ok(self, response: Any) -> Any:
        if response.result != "OK":
            raise ImapError(f"{self._server}: {response.result} {_text(response)}")
        return response

    def _describe(self, error: BaseException) -> str:
        text = str(error) or type(error).__name__
        if not isinstance(error, ImapError):
            text = f"{self._server}: {type(error).__name__}: {text}"
        return text.replace(self.settings.password, "***") if self.settings.password else text


def parse_fetch(lines: Iterable[bytes | bytearray]) -> list[tuple[int, bytes]]:
    """(UID, raw message) pairs from the lines of a `UID FETCH ... (UID BODY.PEEK[])` answer.

    aioimaplib gives each `n FETCH (...)` as a bytes line, the message literal as the next
    line (a bytearray), then the rest of the item (`)` or ` UID 7)`: the UID may come after
    the body). Items without a body are unsolicited flag updates and are skipped.
    """
    messages = []
    uid: int | None = None
    body: bytes | None = None
    for line in lines:
        if isinstance(line, bytearray):
            body = bytes(line)
            continue
        if re.match(rb"\d+ FETCH \(", line):
            if uid is not None and body is not None:
                messages.append((uid, body))
            uid = body = None
        if found := re.search(rb"\bUID (\d+)", line):
            uid = int(found.group(1))
    if uid is not None and body is not None:
        messages.append((uid, body))
    return messages


def imap_utf7(name: str) -> str:
    """A folder name in IMAP's modified UTF-7 (RFC 3501 5.1.3), how servers spell 客服."""
    out: list[str] = []
    pending = ""
    for char in [*name, None]:
        if char is not None and not " " <= char <= "~":
            pending += char
            continue
        if pending:
            encoded = base64.b64encode(pending.encode("utf-16-be")).decode().rstrip("=")
            out.append("&" + encoded.replace("/", ",") + "-")
            pending = ""
        if char is not None:
            out.append("&-" if char == "&" else char)
    return "".join(out)


def _text(response: Any) -> str:
    last = response.lines[-1] if response.lines else b""
    return bytes(last).decode(errors="replace")
