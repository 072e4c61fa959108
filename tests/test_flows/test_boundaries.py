"""flows/ reaches the core only through its public interface (DESIGN.md sections 1 and 2): what
else the engine needs comes in as hub.ports.HubWords, and the conversation-test runner, which
starts a whole hub, lives in hub.testing."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PUBLIC = {"hub.messages", "hub.ports", "hub.yaml_places"}


def imported_modules(path: Path) -> set[str]:
    """Every module an import statement of the file names, wherever it is written."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_flows_import_only_the_public_interface_of_the_hub() -> None:
    for path in sorted((ROOT / "flows").rglob("*.py")):
        for name in imported_modules(path):
            if name == "hub" or name.startswith("hub."):
                assert name in PUBLIC or name.rpartition(".")[0] in PUBLIC, (
                    f"{path.relative_to(ROOT)} imports {name}"
                )
