"""Where a place in a YAML file is: for `path:line:col` errors in the files designers edit
(flows, automations)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq


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
