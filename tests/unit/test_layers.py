"""The dependency rules of the house, read from the source with ``ast``: the domain imports
only the standard library; only ``store/`` touches the ORM, the database drivers and the
private SQL layer; the web layer reaches neither the store nor the domain; no import circle
among mailflow's modules (module-level imports)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import mailflow

ROOT = Path(mailflow.__file__).parent
DATABASE_LIBRARIES = ("sqlalchemy", "sqlmodel", "alembic", "psycopg")
STORE_PRIVATE = ("mailflow.store.models", "mailflow.store.direct", "mailflow.store._direct")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for path in sorted(ROOT.rglob("*.py"))
        if "migrations" not in path.relative_to(ROOT).parts
    }


MODULES = _modules()


def _resolve(module: str, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imports(module: str, *, top_level_only: bool = False) -> set[str]:
    """Every module ``module`` imports; ``from a import b`` counts as ``a.b`` when ``a.b`` is
    a module of mailflow, else as ``a``. ``top_level_only``: imports that run on import
    (not those inside functions, nor under ``if TYPE_CHECKING``)."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    nodes: list[ast.AST]
    if top_level_only:
        nodes = []
        for statement in tree.body:
            if isinstance(statement, ast.If) and "TYPE_CHECKING" in ast.unparse(statement.test):
                continue
            guarded = isinstance(statement, (ast.If, ast.Try))
            nodes.extend(ast.walk(statement) if guarded else [statement])
    else:
        nodes = list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(module, node)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return found


def _is(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


def _offences(modules: list[str], forbidden: tuple[str, ...]) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module in modules
        for name in _imports(module)
        if _is(name, forbidden)
    )


def _under(package: str) -> list[str]:
    return [name for name in MODULES if _is(name, (package,))]


def test_the_walk_finds_the_packages() -> None:
    for package in ("mailflow.domain", "mailflow.store", "mailflow.services", "mailflow.web"):
        assert len(_under(package)) > 1, package
    # The rules below find offences only if the walk sees imports: the store's are known.
    assert any("mailflow.store.models" in _imports(m) for m in _under("mailflow.store"))
    assert "sqlalchemy" in {name.split(".")[0] for name in _imports("mailflow.store.database")}


def test_the_domain_imports_only_the_standard_library() -> None:
    offences = sorted(
        f"{module} imports {name}"
        for module in _under("mailflow.domain")
        for name in _imports(module)
        if name.split(".")[0] not in sys.stdlib_module_names
        and not _is(name, ("mailflow.domain",))
        and name != "__future__"
    )
    assert offences == []


def test_only_the_store_touches_the_database_libraries_and_the_store_internals() -> None:
    outside = [name for name in MODULES if not _is(name, ("mailflow.store",))]
    assert _offences(outside, DATABASE_LIBRARIES + STORE_PRIVATE) == []


def test_the_web_reaches_neither_the_store_nor_the_domain() -> None:
    assert _offences(_under("mailflow.web"), ("mailflow.store", "mailflow.domain")) == []


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle of ``graph``, if there is any (depth-first, iterative)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(graph):
        if state.get(start):
            continue
        path = [start]
        stack = [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return None


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module in MODULES:
        targets = set()
        for name in _imports(module, top_level_only=True):
            # ``import mailflow.a.b`` runs the packages on the way: the edge goes to the module.
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name and name != module and name != "mailflow":
                targets.add(name)
        graph[module] = targets
    return graph


def test_the_cycle_finder_finds_a_circle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_circle_among_mailflow_modules() -> None:
    assert _cycle(_graph()) is None
