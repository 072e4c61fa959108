"""Logs never carry secrets or customers' personal data: `redact(text)` masks phone numbers,
emails, Chinese ID card numbers, bearer tokens, JWTs and API tokens, the values of sensitive
query parameters in URLs (`?visitor=***&token=***`: uvicorn's access log writes every request's
query string, WeChat's signature and openid among them) and the values of the hub's secret
settings; `PiiFilter` applies it to log records.

`install(settings)` (app startup) runs the filter on every record as it is created, so every
handler (the console, JSON logs, pytest's caplog) gets the masked record; a handler added by
hand can also take `pii_filter()` itself, which masks its `extra` fields too."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    from hub.ops.settings import Settings

MIN_SECRET = 4  # shorter values would mask ordinary words
# channel options whose values are credentials (token, app_secret, password, encoding_aes_key)
SECRET_OPTION = re.compile(r"token|secret|password|passwd|key|credential", re.IGNORECASE)

# Query parameters whose values are credentials, signatures or a customer's identity
SENSITIVE_PARAMS = frozenset(
    {
        # WeChat's webhook: signature parameters, the echo, the customer
        *("signature", "msg_signature", "timestamp", "nonce", "echostr", "openid", "unionid"),
        # the widget and the inbox's events socket; one-time codes and tickets
        *("visitor", "token", "jwt", "code", "ticket", "state", "session", "sid", "sig"),
        *("hash", "email", "phone", "mobile", "password", "secret", "key", "auth"),
    }
)
# ...and any name that says it holds one: access_token, corpsecret, phone_hash, api_key
_SENSITIVE_NAME = re.compile(r"token|secret|passw|signature|hash|email|phone|_key$|^key_")
_QUERY_PARAM = re.compile(r"(?<=[?&;])([\w.\-%\[\]]{1,64})=([^&#\s\"'<>]+)")


def sensitive_param(name: str) -> bool:
    plain = unquote(name).lower().removesuffix("[]")
    return plain in SENSITIVE_PARAMS or bool(_SENSITIVE_NAME.search(plain))


def mask_query(text: str) -> str:
    """Every sensitive query parameter's value in `text` masked: `/ws?visitor=***&lang=zh`.
    The path and the other parameters stay readable."""
    if "=" not in text:
        return text
    return _QUERY_PARAM.sub(
        lambda m: f"{m.group(1)}=***" if sensitive_param(m.group(1)) else m.group(0), text
    )


_Sub = str | Callable[[re.Match[str]], str]


def _keep_last(n: int, mask: str) -> Callable[[re.Match[str]], str]:
    return lambda m: mask + re.sub(r"\D", "", m.group(0))[-n:]


# In order: tokens before the numbers and emails they might contain; ID cards before phones.
_RULES: list[tuple[re.Pattern[str], _Sub]] = [
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1***"),
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), "[jwt]"),
    (re.compile(r"\bkefu_[\w-]{8,}"), "kefu_***"),
    (  # Chinese resident ID: region, birth date (19xx/20xx), sequence, check digit or X
        re.compile(
            r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])"
            r"(?:0[1-9]|[12]\d|3[01])\d{3}[0-9Xx](?![0-9A-Za-z])"
        ),
        lambda m: m.group(0)[:3] + "*" * 13 + m.group(0)[-2:],
    ),
    (  # Chinese mobile, with or without +86: 138****5678
        re.compile(r"(?<![\d+])(?:(?:\+|00)86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?!\d)"),
        r"\1****\2",
    ),
    (  # international: +44 20 7946 0958 -> +***58
        re.compile(r"(?<![\w+])\+\d(?:[ -]?\d){6,14}(?!\d)"),
        _keep_last(2, "+***"),
    ),
    (  # keep the first character and the domain: l***@example.com
        re.compile(r"(?<![\w.+-])([\w+-])[\w.+-]*@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)"),
        r"\1***@\2",
    ),
]


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """`text` with personal data, credentials and the given secret values masked."""
    for secret in secrets:
        if len(secret) >= MIN_SECRET:
            text = text.replace(secret, "***")
    text = mask_query(text)
    for pattern, sub in _RULES:
        text = pattern.sub(sub, text)
    return text


def secret_values(settings: Settings) -> set[str]:
    """The secret settings' values: KEFU_SECRET_KEY (or the generated key), passwords in the
    database and Redis URLs, and the credentials among the channels' options."""
    found: set[str] = set()
    if settings.secret_key:
        found.add(settings.secret_key)
    key_file = settings.data_dir / "secret_key"
    if key_file.is_file():
        found.add(key_file.read_text().strip())
    for url in (settings.database_url, settings.redis_url):
        password = urlsplit(url).password if url else None
        if password:
            found.add(password)

    def walk(options: Any, secret: bool) -> None:
        if isinstance(options, dict):
            for key, value in options.items():
                walk(value, secret or bool(SECRET_OPTION.search(str(key))))
        elif isinstance(options, list):
            for value in options:
                walk(value, secret)
        elif secret and isinstance(options, str | int) and not isinstance(options, bool):
            found.add(str(options))

    for channel in settings.channels:
        walk(channel.options, False)
    return {s for s in found if len(s) >= MIN_SECRET}


_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class PiiFilter(logging.Filter):
    """Masks a record's message (arguments merged in), traceback and string `extra` fields.
    Never drops a record."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self._secrets: list[str] = []
        self.add_secrets(secrets)

    def add_secrets(self, secrets: Iterable[str]) -> None:
        # longest first: a secret containing another is masked whole
        merged = set(self._secrets) | {s for s in secrets if len(s) >= MIN_SECRET}
        self._secrets = sorted(merged, key=len, reverse=True)

    def redact(self, text: str) -> str:
        return redact(text, self._secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: logging reports it as it would have
            return True
        masked = self.redact(message)
        args = record.args
        if isinstance(args, tuple) and all(isinstance(a, _PLAIN) for a in args):
            # Formatters that read the arguments themselves (uvicorn's access lines unpack
            # them) keep them, masked one by one, when that masks the line just as well.
            each = tuple(self.redact(a) if isinstance(a, str) else a for a in args)
            with contextlib.suppress(TypeError, ValueError):
                if str(record.msg) % each == masked:
                    record.args = each
                    return self._rest(record)
        record.msg, record.args = masked, None
        return self._rest(record)

    def _rest(self, record: logging.LogRecord) -> bool:
        """Mask the record's traceback, stack and extra string fields."""
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, self.redact(value))
        return True


_PLAIN = (str, int, float, type(None))  # arguments formatted the same as text or as numbers
_filter = PiiFilter()
_installed = False


def pii_filter() -> PiiFilter:
    """The filter `install` runs on every record (with every secret installed so far)."""
    return _filter


def install(settings: Settings) -> PiiFilter:
    """Mask every log record of this process from now on, `settings`' secrets included.
    Installing again (another hub in the same process) only adds secrets."""
    global _installed
    _filter.add_secrets(secret_values(settings))
    if not _installed:
        create = logging.getLogRecordFactory()

        def masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = create(*args, **kwargs)
            _filter.filter(record)
            return record

        logging.setLogRecordFactory(masked_record)
        _installed = True
    return _filter
