"""The package's import graph, read from the source (no code is imported or run).

Every ``import bibcrop...`` and ``from bibcrop... import ...`` counts, at module level or
inside a function alike, so a lazy import cannot hide a dependency. ``from pkg import
name`` points at ``pkg.name`` when that is a module, else at ``pkg`` itself; a package
``__init__`` that re-exports lazily through an ``_EXPORTS = {name: submodule}`` dict (as
:mod:`bibcrop.tracking` does) is followed to the submodule.

Used by ``tests/test_import_graph.py`` (no cycles; ``dvc.yaml`` deps cover the imports)
and by :mod:`bibcrop.training.fingerprint` (the code a training run depends on).
"""

from __future__ import annotations

import ast
from collections.abc import Iterable
from pathlib import Path

PACKAGE = "bibcrop"


def package_dir() -> Path:
    """The ``src/bibcrop`` folder this module lives in."""
    return Path(__file__).resolve().parent


def module_files(root: Path | None = None, package: str = PACKAGE) -> dict[str, Path]:
    """Dotted module name -> its ``.py`` file, for every module under ``root``."""
    root = Path(root or package_dir())
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join([package, *parts])] = path
    return modules


def _lazy_exports(tree: ast.Module) -> dict[str, str]:
    """``_EXPORTS = {"name": "submodule"}`` in a package ``__init__``, if any."""
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "_EXPORTS" for t in targets):
            try:
                return dict(ast.literal_eval(node.value))
            except ValueError:
                return {}
    return {}


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(root: Path | None = None, package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source (sorted sets)."""
    files = module_files(root, package)
    trees = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in files.items()}
    exports = {name: _lazy_exports(tree) for name, tree in trees.items()}

    def target(base: str, name: str) -> str:
        if f"{base}.{name}" in files:
            return f"{base}.{name}"
        if name in exports.get(base, {}):
            return f"{base}.{exports[base][name]}"
        return base

    graph: dict[str, set[str]] = {}
    for name, tree in trees.items():
        is_package = files[name].name == "__init__.py"
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.split(".")[0] == package)
            elif isinstance(node, ast.ImportFrom):
                base = _absolute(node, name, is_package)
                if base.split(".")[0] == package:
                    edges.update(target(base, a.name) for a in node.names)
        graph[name] = {e for e in edges if e in files and e != name}
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every import cycle: the strongly connected groups of more than one module (Tarjan's
    algorithm, iterative), each sorted, sorted, for stable messages."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return sorted(cycles)


def closure(graph: dict[str, set[str]], roots: Iterable[str]) -> set[str]:
    """The modules importing ``roots`` runs: their imports, transitively, plus every
    enclosing package ``__init__`` (Python runs those first)."""
    seen: set[str] = set()
    todo = list(roots)
    while todo:
        module = todo.pop()
        if module in seen or module not in graph:
            continue
        seen.add(module)
        todo.extend(graph[module])
        parts = module.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))
    return seen


def code_files(roots: Iterable[str], root: Path | None = None) -> list[Path]:
    """The source files of :func:`closure` of ``roots`` (sorted), read from ``root``."""
    files = module_files(root)
    return sorted(files[m] for m in closure(import_graph(root), roots))
