"""The house's rooms: no import cycle among the appliance's modules, the simulation stays out of the product,
and no module grows past ~500 lines without saying why at its top."""
import ast
import pathlib

import pytest
from paths import ROOT

PACKAGE = ROOT / "appliance"
# Modules the box itself runs must not reach the simulation (it is for the demo and the tests).
PRODUCT = ("appliance.box", "appliance.hotspot", "appliance.capture", "appliance.check", "appliance.analysis",
           "appliance.report", "appliance.usb", "appliance.hw", "appliance.screens", "appliance.matcher",
           "appliance.indicators", "appliance.export")
LONG = 500


def _modules() -> dict[str, pathlib.Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(name: str, path: pathlib.Path, known: set[str]) -> set[str]:
    """The appliance modules a module imports when it runs (imports under `if TYPE_CHECKING:` do not count)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    tree = ast.parse(path.read_text())
    typing_only = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names} & known
            found |= subs if len(subs) == len(node.names) else subs | ({target} & known)
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names} & known
    found.discard(name)
    return found


def _graph(mods: dict[str, pathlib.Path]) -> dict[str, set[str]]:
    known = set(mods)
    return {name: _imports(name, path, known) for name, path in mods.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_among_the_appliance_modules():
    """No two appliance modules import each other, directly or through others."""
    assert _cycles(_graph(_modules())) == []


def test_the_cycle_finder_finds_a_cycle():
    """The check above can fail: a made-up graph with a loop is reported."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_product_does_not_import_the_simulation():
    """What runs on the box never imports appliance.sim (the demo command and the tests do)."""
    graph = _graph(_modules())
    reach = {}

    def reached(name):
        if name not in reach:
            reach[name] = set()
            for dep in graph[name]:
                reach[name] |= {dep} | reached(dep)
        return reach[name]

    offenders = {name: sorted(d for d in reached(name) if d.startswith("appliance.sim"))
                 for name in graph if name.startswith(PRODUCT)}
    assert {k: v for k, v in offenders.items() if v} == {}


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_a_long_module_says_why_at_its_top(path):
    """A module over ~500 lines says in its docstring why it is one file (the word 'long' or 'lines' in it)."""
    source = path.read_text()
    if source.count("\n") <= LONG:
        return
    doc = ast.get_docstring(ast.parse(source)) or ""
    assert "long" in doc.lower() or "lines" in doc.lower(), f"{path.name}: {source.count(chr(10))} lines, no reason"
