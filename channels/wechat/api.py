"""The official account's HTTP API, as the channel calls it: sending customer-service messages
and fetching the files customers send, with the access_token added and renewed once when WeChat
rejects it. Its failures are DeliveryErrors that never show the token or the secret."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

import httpx

from channels.base import DeliveryError
from channels.wechat.options import WeChatOptions
from channels.wechat.tokens import AccessToken, TokenCache

TOKEN_ERRCODES = frozenset({40001, 40014, 42001})  # the access_token is invalid or expired
RETRY_AFTER = {-1: 1.0, 45011: 60.0}  # "system busy", "API minute quota reached"
HINTS = {
    40013: "app_id is wrong",
    40125: "app_secret is wrong",
    40164: "the hub's IP address is not on the account's IP whitelist",
    43004: "the customer does not follow the account",
    45015: "the customer last wrote more than 48 hours ago; the customer-service API can't "
    "reach them until they write again",
    45047: "too many customer-service messages since the customer last wrote",
}


class WeChatError(DeliveryError):
    """An errcode from the API, with WeChat's errmsg (what the agent sees on a failed send)."""

    def __init__(self, errcode: int, errmsg: str) -> None:
        hint = HINTS.get(errcode)
        text = f"WeChat errcode {errcode}: {errmsg}" + (f" ({hint})" if hint else "")
        super().__init__(
            text, retryable=errcode in RETRY_AFTER, retry_after=RETRY_AFTER.get(errcode)
        )
        self.errcode, self.errmsg = errcode, errmsg


@dataclass(frozen=True)
class Media:
    data: bytes
    name: str | None
    mime_type: str | None


def errcode_of(response: httpx.Response) -> tuple[int, str] | None:
    """WeChat's (errcode, errmsg) when the answer is a JSON error; None for success or a file."""
    if not response.content.startswith(b"{"):
        return None
    try:
        data = response.json()
    except ValueError:
        return None
    code = data.get("errcode", 0) if isinstance(data, dict) else 0
    return (int(code), str(data.get("errmsg", ""))) if code else None


class WeChatApi:
    """The API calls the channel makes, with the access_token added and renewed once when
    WeChat rejects it. Errors are DeliveryErrors that never show the token or the secret."""

    def __init__(self, options: WeChatOptions, cache: TokenCache) -> None:
        self.options = options
        self.base = options.api_base.rstrip("/")
        self.tokens = AccessToken(self.fetch_token, cache)
        self._http: httpx.AsyncClient | None = None

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self.options.api_timeout)
        return self._http

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        await self.tokens.cache.close()

    async def request(
        self, method: str, path: str, params: dict[str, str], body: bytes | None = None
    ) -> httpx.Response:
        url = path if path.startswith("http") else self.base + path
        where = f"WeChat API {path.split('?')[0]}"  # never the query: it holds the token
        try:
            response = await self.http.request(
                method,
                url,
                params=params,
                content=body,
                headers={"content-type": "application/json; charset=utf-8"} if body else None,
            )
        except httpx.HTTPError as e:
            raise DeliveryError(f"{where}: {type(e).__name__}") from e
        if response.status_code >= 400:
            status = response.status_code
            raise DeliveryError(
                f"{where} answered HTTP {status}", retryable=status >= 500 or status == 429
            )
        return response

    async def fetch_token(self) -> tuple[str, float]:
        params = {
            "grant_type": "client_credential",
            "appid": self.options.app_id,
            "secret": self.options.app_secret,
        }
        response = await self.request("GET", "/cgi-bin/token", params)
        error = errcode_of(response)
        if error:
            raise WeChatError(*error)
        data = response.json()
        return str(data["access_token"]), float(data.get("expires_in", 7200))

    async def call(
        self,
        method: str,
        path: str,
        params: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        token = await self.tokens.get()
        response = await self.request(method, path, {**(params or {}), "access_token": token}, body)
        error = errcode_of(response)
        if error and error[0] in TOKEN_ERRCODES:  # renewed, and the call made once more
            token = await self.tokens.refresh(token)
            response = await self.request(
                method, path, {**(params or {}), "access_token": token}, body
            )
            error = errcode_of(response)
        if error:
            raise WeChatError(*error)
        return response

    async def send_text(self, openid: str, text: str) -> None:
        message = {"touser": openid, "msgtype": "text", "text": {"content": text}}
        # raw UTF-8: WeChat shows \\uXXXX escapes literally
        body = json.dumps(message, ensure_ascii=False).encode()
        await self.call("POST", "/cgi-bin/message/custom/send", body=body)

    async def media(self, media_id: str) -> Media:
        """A file the customer sent (temporary media, kept 3 days by WeChat)."""
        response = await self.call("GET", "/cgi-bin/media/get", {"media_id": media_id})
        if response.content.startswith(b"{"):  # a video: WeChat answers with its URL
            video_url = response.json().get("video_url")
            if not video_url:
                raise DeliveryError("WeChat API /cgi-bin/media/get: no file in the answer", False)
            response = await self.request("GET", str(video_url), {})
        found = re.search(r'filename="?([^";]+)', response.headers.get("content-disposition", ""))
        mime = response.headers.get("content-type", "").split(";")[0].strip() or None
        return Media(response.content, found.group(1) if found else media_id, mime)


class _RedactSecrets(logging.Filter):
    """httpx logs each request's URL at INFO; the token API's has the app secret in it."""

    _SECRET = re.compile(r"((?:secret|access_token)=)[^&\s\"]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "secret=" in message or "access_token=" in message:
            record.msg, record.args = self._SECRET.sub(r"\1***", message), ()
        return True


redact_secrets = _RedactSecrets()
