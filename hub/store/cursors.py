"""Pagination cursors the store hands out: opaque to clients, (time, id) inside."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from sqlalchemy import or_


class CursorError(ValueError):
    """A pagination cursor that this store did not hand out."""


def encode_cursor(when: datetime, ident: int) -> str:
    return base64.urlsafe_b64encode(f"{when.isoformat()}|{ident}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    try:
        when, ident = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(when), int(ident)
    except (ValueError, UnicodeDecodeError) as e:
        raise CursorError("invalid cursor") from e


def older_than(cursor: str, when: Any, ident: Any) -> Any:
    """The rows after the one `cursor` names in newest-first order (`when` then `ident`,
    descending): older, or as old with a smaller id. Raises CursorError for a cursor this
    store did not hand out."""
    at, last = decode_cursor(cursor)
    return or_(when < at, (when == at) & (ident < last))
