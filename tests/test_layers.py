"""The package's folders are layers: each module imports only from its own layer or those below,
and no set of modules imports itself back (deferred imports inside functions included: a cycle
hidden by one is still a cycle). Read from the source, so nothing is imported to check."""

import ast

from conftest import ROOT

PACKAGE = ROOT / "mnist_lab"
LAYERS = ("core", "results", "training", "analysis", "commands")  # lowest first; cli.py and api.py stand above them


def module_name(path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def import_graph() -> dict:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level:
                raise AssertionError(f"{path}: a relative import (the package imports by full name)")
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mnist_lab"):
                for alias in node.names:
                    target = f"{node.module}.{alias.name}"
                    targets.add(target if target in modules else node.module)
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names if alias.name in modules}
        graph[name] = targets & modules.keys() - {name}
    return graph


def layer(name: str):
    parts = name.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 2 and parts[1] in LAYERS else None


def cycles(graph) -> list:
    """Every strongly connected set of more than one module (Tarjan's algorithm)."""
    index, low, stack, found, counter = {}, {}, [], [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            members = []
            while not members or members[-1] != node:
                members.append(stack.pop())
            if len(members) > 1:
                found.append(sorted(members))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_from_a_layer_above_its_own():
    upward = [f"{name} -> {target}" for name, targets in import_graph().items() for target in sorted(targets)
              if layer(name) is not None and layer(target) is not None and layer(target) > layer(name)]
    assert upward == []


def test_no_import_cycle_even_through_deferred_imports():
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
