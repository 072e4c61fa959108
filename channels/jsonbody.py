"""Reading a webhook's JSON body without letting it hurt the hub: `json.loads` raises
RecursionError on arrays nested some thousand deep and ValueError on an integer of more than
4300 digits (neither a JSONDecodeError), and what it lets through, 900 levels deep or a
4000-digit id, breaks later (validation, storage, json.dumps of the payload). No platform
sends such things, so they are refused as unreadable (a 400), with what is wrong.
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_DEPTH = 64  # Telegram's updates nest about 10 deep (a reply's keyboard in a message)
MAX_DIGITS = 40  # ids are 64-bit at most: 20 digits


class Unreadable(ValueError):
    """The body is not JSON this hub reads; the message says why."""


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise Unreadable(f"a number with {len(text.lstrip('-'))} digits")
    return int(text)


def _float(text: str) -> float:
    value = float(text) if len(text) <= MAX_DIGITS * 2 else math.inf
    if not math.isfinite(value):
        raise Unreadable(f"a number out of range ({text[:20]}...)")
    return value


def _constant(name: str) -> Any:
    raise Unreadable(f"{name} is not JSON")


def loads(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The body's JSON value; Unreadable when it isn't UTF-8 JSON, nests deeper than
    `max_depth`, or holds a number longer than any id (or NaN, Infinity)."""
    try:
        value = json.loads(body, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except Unreadable:
        raise
    except RecursionError as e:
        raise Unreadable(f"nested deeper than {max_depth} levels") from e
    except UnicodeDecodeError as e:
        raise Unreadable("the body is not UTF-8") from e
    except ValueError as e:  # JSONDecodeError
        raise Unreadable(f"the body is not JSON: {e}") from e
    if depth_over(value, max_depth):
        raise Unreadable(f"nested deeper than {max_depth} levels")
    return value


def depth_over(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest deeper than `limit` (without recursion)."""
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False
