"""What the platform channels each need alike, written once:

- `Recent` / `SeenIds`: what a platform sent lately (update ids, event ids, nonces), kept for a
  while and bounded, so that a redelivery is recognized;
- `split_text`: a text cut into the pieces a platform takes, by the length the platform counts
  (UTF-8 bytes for WeChat, UTF-16 code units for Telegram, characters for Slack);
- `problems`: what a pydantic ValidationError found, as "field: message; ..." for a person;
- `kind_of`: the kind of message a customer's file makes, by its MIME type.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pydantic import ValidationError

from hub.messages import Kind

KeyT = TypeVar("KeyT", bound=Hashable)
ValueT = TypeVar("ValueT")


class Recent(Generic[KeyT, ValueT]):
    """A value remembered under each key for `ttl` seconds, at most `max_size` keys (the oldest
    dropped first). One process's memory: with several hub processes a redelivery may reach
    another one, where the pipeline's (channel, channel_message_id) dedupe is the second line."""

    def __init__(
        self, ttl: float, max_size: int = 100_000, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.ttl, self.max_size, self.clock = ttl, max_size, clock
        # (expiry, value) by key, in the order the keys came
        self._expiry: OrderedDict[KeyT, tuple[float, ValueT]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._expiry)

    def claim(self, key: KeyT, value: ValueT, ttl: float | None = None) -> ValueT | None:
        """Remember `value` under `key` for `ttl` seconds (the memory's own by default), unless
        the key holds a value already: that one is returned then. None: the key was new, and
        now holds `value`."""
        now = self.clock()
        while self._expiry and next(iter(self._expiry.values()))[0] <= now:
            self._expiry.popitem(last=False)
        found = self._expiry.get(key)
        if found is not None and found[0] > now:
            return found[1]
        self._expiry[key] = (now + (self.ttl if ttl is None else ttl), value)
        while len(self._expiry) > self.max_size:
            self._expiry.popitem(last=False)
        return None

    def forget(self, key: KeyT) -> None:
        """Let the key be claimed again: handling what came under it failed for a passing
        reason, and the platform's redelivery must be taken."""
        self._expiry.pop(key, None)


class SeenIds(Recent[KeyT, bool]):
    """The ids a platform delivered in the last `ttl` seconds, so a redelivery is handled once."""

    def seen(self, key: KeyT) -> bool:
        """Whether the id came before (within the TTL); remembers it when not."""
        return self.claim(key, True) is not None


def utf8_bytes(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def utf16_units(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def split_text(text: str, limit: int, measure: Callable[[str], int] = len) -> list[str]:
    """Pieces of at most `limit`, as `measure` counts (characters by default), each cut at its
    last line break in its second half, else its last space there, else where the limit falls;
    the line break or space cut at goes. Pieces of white space only are left out ("" gives [])."""
    pieces: list[str] = []
    while measure(text) > limit:
        cut = _fitting(text, limit, measure)
        newline, space = text.rfind("\n", 0, cut), text.rfind(" ", 0, cut)
        at = newline if newline > cut // 2 else space if space > cut // 2 else -1
        if at > 0:
            pieces.append(text[:at])
            text = text[at + 1 :]
        else:
            pieces.append(text[:cut])
            text = text[cut:]
    pieces.append(text)
    return [p for p in pieces if p.strip()]


def _fitting(text: str, limit: int, measure: Callable[[str], int]) -> int:
    """How many characters of `text` fit in `limit` (one at least, so every cut moves on)."""
    low, high = 1, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if measure(text[:middle]) <= limit:
            low = middle
        else:
            high = middle - 1
    return low


def problems(
    error: ValidationError, skip: int = 0, whole: str = "value", most: int | None = None
) -> str:
    """What `error` found, field by field: "items.0.name: Field required; ...". `skip` drops
    the first parts of each field's location (a tagged union's tag), `whole` names the value
    itself when the location is empty, `most` keeps only the first problems."""
    return "; ".join(
        f"{'.'.join(str(part) for part in err['loc'][skip:]) or whole}: {err['msg']}"
        for err in error.errors()[:most]
    )


def kind_of(mime_type: str | None) -> Kind:
    """An image, audio or video by its MIME type's major part; anything else is a file."""
    major = (mime_type or "").split("/")[0]
    return {"image": Kind.IMAGE, "audio": Kind.AUDIO, "video": Kind.VIDEO}.get(major, Kind.FILE)
