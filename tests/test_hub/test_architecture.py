"""The rules every change keeps (README, Architecture), read from the code itself.

Every module of hub, channels, nlu, flows, knowledge and admin is parsed (not imported); an
import counts wherever it is written: at module level, inside a function, or under
TYPE_CHECKING; relative imports are resolved. `from a.b import c` imports the module `a.b.c`
when there is one, else `a.b`.

The layers of hub/:
- the core: hub.core (pipeline, conversations, receiver, ...), hub.messages, hub.ports and
  hub.store (persistence);
- ops: hub.ops (settings, logs, metrics, cluster, limits, ...): what running the hub needs;
- features: hub.features.<name>, each with its logic, storage and routes;
- the HTTP layer: every module that defines routes or the app, and the web framework:
  hub.inbox (the core's API routes and their dependencies), each feature's `routes` (and
  `login`) module, hub.bot.routes, hub.app, admin, and the fastapi and starlette packages;
- the composition root: hub.app, hub.bot, hub.cli, hub.cli_agents, hub.__main__, hub.testing:
  the only place that chooses implementations (channels/, flows/, nlu/, knowledge/).
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("hub", "channels", "nlu", "flows", "knowledge", "admin")
MAX_LINES = 600

CORE = ("hub.core", "hub.messages", "hub.ports", "hub.store")
OPS = ("hub.ops",)
FEATURES = "hub.features"
COMPOSITION = ("hub.app", "hub.bot", "hub.cli", "hub.cli_agents", "hub.__main__", "hub.testing")
IMPLEMENTATIONS = ("channels", "flows", "nlu", "knowledge")
WEB_FRAMEWORK = ("fastapi", "starlette")


def within(module: str, prefixes: tuple[str, ...] | str) -> bool:
    """`module` is one of `prefixes` or inside one of them (a package's submodule)."""
    if isinstance(prefixes, str):
        prefixes = (prefixes,)
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_http(module: str) -> bool:
    """Whether `module` is part of the HTTP layer (see the module's docstring)."""
    if within(module, ("hub.inbox", "hub.app", "hub.bot.routes", "admin", *WEB_FRAMEWORK)):
        return True
    parts = module.split(".")
    return within(module, FEATURES) and len(parts) > 3 and parts[3] in ("routes", "login")


def modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


MODULES = modules()


def imported(module: str, path: Path) -> Iterator[str]:
    """Every module `module` imports: those of this repo by their module name, others by the
    name written (`fastapi.responses`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield known(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                yield submodule if submodule in MODULES else known(source)


def known(name: str) -> str:
    """The repo's module that `name` is or is inside; `name` itself when it is not ours."""
    candidate = name
    while candidate and candidate not in MODULES:
        candidate = candidate.rpartition(".")[0]
    return candidate or name


GRAPH = {m: {t for t in imported(m, p) if t != m} for m, p in MODULES.items()}


def offenders(importers: tuple[str, ...] | str, forbidden: Callable[[str], bool]) -> list[str]:
    """`importer -> imported` for each import by a module within `importers` of a module
    for which `forbidden(imported)` holds."""
    return sorted(
        f"{m} -> {t}"
        for m, targets in GRAPH.items()
        if within(m, importers)
        for t in targets
        if forbidden(t)
    )


def test_no_import_cycles() -> None:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in MODULES:
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    assert not cycles, "import cycles:\n" + "\n".join(", ".join(c) for c in cycles)


def test_the_core_imports_no_feature_channel_http_or_implementation() -> None:
    def forbidden(target: str) -> bool:
        return within(target, (FEATURES, *COMPOSITION, *IMPLEMENTATIONS)) or is_http(target)

    bad = offenders(CORE, forbidden)
    assert bad == [], "the core imports:\n" + "\n".join(bad)


def test_ops_import_no_feature_channel_or_http_layer() -> None:
    def forbidden(target: str) -> bool:
        if within(target, WEB_FRAMEWORK):
            return False  # ops' middlewares speak ASGI (starlette.types); they define no route
        return within(target, (FEATURES, *COMPOSITION, *IMPLEMENTATIONS)) or is_http(target)

    bad = offenders(OPS, forbidden)
    assert bad == [], "ops import:\n" + "\n".join(bad)


def test_the_core_http_layer_imports_no_feature() -> None:
    """hub.inbox is the core's API: features add their own routes, it names none of them."""
    bad = offenders("hub.inbox", lambda t: within(t, (FEATURES, *COMPOSITION, "channels")))
    assert bad == [], "the core's routes import:\n" + "\n".join(bad)


def test_features_import_no_other_features_internals() -> None:
    """A feature imports the core, ops and hub.inbox's dependencies; another feature only by
    the names its package exports (`from hub.features.routing import Routing`), never the
    composition root nor a channel."""
    bad = []
    for module, targets in GRAPH.items():
        if not within(module, FEATURES) or module == FEATURES:
            continue
        own = ".".join(module.split(".")[:3])
        for target in targets:
            other_feature = within(target, FEATURES) and not within(target, own)
            if other_feature and len(target.split(".")) > 3:
                bad.append(f"{module} -> {target}")
            elif within(target, (*COMPOSITION, "channels")):
                bad.append(f"{module} -> {target}")
    assert sorted(bad) == [], "a feature imports:\n" + "\n".join(sorted(bad))


def test_channels_use_only_the_public_interface_of_hub() -> None:
    """hub.messages and hub.ports are what channel packages, here or outside this repo, may
    import of hub."""
    public = ("hub.messages", "hub.ports")
    bad = offenders("channels", lambda t: within(t, "hub") and not within(t, public))
    assert bad == [], "channels import:\n" + "\n".join(bad)


def test_the_public_interface_stays_where_it_is() -> None:
    for module in ("hub.messages", "hub.ports"):
        assert module in MODULES, f"{module} is gone: channel packages outside import it"


def test_no_module_over_600_lines() -> None:
    skipped = {"tests", "bench", "migrations", "node_modules"}
    tops = [p for p in ROOT.iterdir() if p.name not in skipped and not p.name.startswith(".")]
    paths = [p for top in tops for p in ([top] if top.is_file() else top.rglob("*.py"))]
    big = []
    for path in paths:
        relative = path.relative_to(ROOT)
        if path.suffix != ".py" or skipped & set(relative.parts):
            continue
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES:
            big.append(f"{relative}: {lines} lines")
    assert sorted(big) == [], f"over {MAX_LINES} lines (split them into a package)"


def persistence_classes() -> set[str]:
    """The classes of hub.store and of each feature's store that reach the database."""
    names: set[str] = set()
    for module, path in MODULES.items():
        parts = module.split(".")
        if within(module, "hub.store") or (within(module, FEATURES) and parts[-1] == "store"):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names |= {n.name for n in tree.body if isinstance(n, ast.ClassDef) and over_db(n)}
    return names


def over_db(cls: ast.ClassDef) -> bool:
    """`cls` is the database, an aggregate's store, or is built over the database."""
    if cls.name == "Database" or any(ast.unparse(b) == "Aggregate" for b in cls.bases):
        return True
    inits = [f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "__init__"]
    return any("Database" in ast.unparse(a.annotation or a) for f in inits for a in f.args.args)


def test_routes_reach_persistence_one_way() -> None:
    """Routes use the stores the composition root built once (hub.store for the core, a
    feature's own object through hub.inbox.deps.part): no route opens a session on the
    database, builds a store of its own, or speaks SQL."""
    routes = [m for m in MODULES if is_http(m) and within(m, "hub") and m != "hub.app"]
    assert "hub.inbox.routes" in routes and "hub.features.reports.routes" in routes
    builders = persistence_classes()
    assert {"Store", "People", "ApiTokens", "WebhookStore", "Database"} <= builders
    found = []
    for module in routes:
        tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr == "db":
                found.append(f"{module}:{node.lineno}: reads .db")
            elif isinstance(node, ast.Call):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", "")
                if name in builders:
                    found.append(f"{module}:{node.lineno}: builds {name}")
        found += [f"{module}: imports {t}" for t in GRAPH[module] if within(t, SQL)]
    assert found == []


SQL = ("sqlalchemy", "sqlmodel")
