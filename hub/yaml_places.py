"""Where a place in a YAML file is: for `path:line:col` errors in the files designers edit
(flows, conversation tests, automations).

Public interface, like hub.messages and hub.ports, and kept at this path: the loaders of a bot
folder's files, in flows/ and in the core (automations), read YAML and report `path:line:column:
what is wrong` the same way through it, so `kefu check` lists every error of every file in one
order. It imports nothing of the hub."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError


def read_yaml(path: Path) -> tuple[Any, str | None]:
    """The file's YAML with the places of its nodes (`position`), or None and what is wrong
    with it as `path:line:col: what`. An empty file is None without an error."""
    try:
        return YAML(typ="rt").load(path.read_text(encoding="utf-8")), None
    except MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else f"{path}:1:1"
        return None, f"{at}: invalid YAML: {e.problem or e.context}"
    except UnicodeDecodeError as e:
        return None, f"{path}:1:1: not UTF-8 text: {e.reason}"


def position(node: Any, loc: Iterable[Any]) -> tuple[int, int]:
    """The 1-based line and column of the deepest node on `loc` that the YAML has."""
    line, column = (node.lc.line, node.lc.col) if hasattr(node, "lc") else (0, 0)
    for key in loc:
        if isinstance(node, CommentedMap) and key in node:
            line, column = node.lc.key(key)
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and key < len(node):
            line, column = node.lc.item(key)
            node = node[key]
        else:
            break
    return line + 1, column + 1


_PLACE = re.compile(r"^(.*?):(\d+):(\d+): ")


def by_place(errors: Iterable[str]) -> list[str]:
    """`path:line:column: what` errors in file order, then line and column order."""

    def key(error: str) -> tuple[str, int, int]:
        m = _PLACE.match(error)
        return (m.group(1), int(m.group(2)), int(m.group(3))) if m else (error, 0, 0)

    return sorted(errors, key=key)
