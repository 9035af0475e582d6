"""Layers import only downwards, and no module imports itself back through a cycle.

The layers, lowest first (a module may import its own layer or any below)::

    exceptions, _version          the error types
    backend, machine              array namespaces, device moves; what machine this is
    validation, activations       argument checks; the nonlinearities
    kernels                       the hot loops (reference, numba, cupy)
    nn                            hand-written layers with their backward passes
    datasets, envs, metrics, planning
    base, training, models        the protocol, the one training loop, the families
    bench, reproduce              timings; paper reproductions (runs, not library code)
    cli, __init__, __main__       the entry points

The check reads the source (``ast``), so it also sees imports inside functions.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "predcode"

LAYERS = [
    {"exceptions", "_version"},
    {"backend", "machine"},
    {"validation", "activations"},
    {"kernels"},
    {"nn"},
    {"datasets", "envs", "metrics", "planning", "pomdp"},
    {"base", "training", "models"},
    {"bench", "reproduce"},
    {"cli", "__init__", "__main__"},
]
RANK = {name: i for i, layer in enumerate(LAYERS) for name in layer}


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _top(module: str) -> str:
    """``predcode.models.pcn`` -> ``models``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> set[str]:
    """predcode modules imported by ``path`` (absolute dotted names)."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "predcode"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != "predcode":
                continue
            for alias in node.names:  # `from . import x` may name a submodule
                sub = f"{target}.{alias.name}"
                is_module = (ROOT.parent / Path(*sub.split("."))).with_suffix(".py").exists() or (
                    ROOT.parent / Path(*sub.split("."))).is_dir()
                out.add(sub if is_module else target)
    return out


MODULES = {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}
GRAPH = {m: _imports(p) for m, p in MODULES.items()}


def test_every_top_level_module_has_a_layer():
    tops = {_top(m) for m in MODULES}
    assert tops <= set(RANK), f"put these in a layer of tests/test_layers.py: {tops - set(RANK)}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_downwards(module):
    if _top(module) == "__init__":
        return
    up = []
    for target in sorted(GRAPH[module]):
        if target == "predcode":
            up.append(f"{target} (the package: import the module that holds the name)")
        elif RANK[_top(target)] > RANK[_top(module)]:
            up.append(target)
    assert not up, f"{module} imports upwards: {up}"


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    return cycles


def test_no_cycles_between_packages_of_one_layer():
    """``bench`` and ``reproduce`` (say) share a layer, but only one may import the other."""
    graph: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        src = _top(module)
        graph.setdefault(src, set()).update(
            _top(t) for t in targets if t != "predcode" and _top(t) != src)
    cycles = _cycles(graph)
    assert not cycles, "package cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_import_cycles():
    def resolve(target):
        while target not in MODULES and "." in target:
            target = target.rsplit(".", 1)[0]
        return target

    graph = {m: {resolve(t) for t in ts} - {m} for m, ts in GRAPH.items()}
    # a package's __init__ re-exporting its own submodules is not a cycle
    for m in graph:
        if MODULES[m].name == "__init__.py":
            graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    cycles = _cycles(graph)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)
