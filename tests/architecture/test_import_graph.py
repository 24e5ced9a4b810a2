"""The package layout follows the data flow, and the import graph says so.

An AST walk of both packages (imports at module level *and* inside functions, so a loop cannot
hide in a function body) checks that there is no import loop between modules or between the
library's top-level units, that every import goes to the same or an earlier step of the flow,
and that the pipelines use the library's public API only.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# The library's top-level units in data-flow order; an import may only go to the same step or
# an earlier one. Leaves (errors, names, ...) are the concerns with one home that all steps use.
FLOW: list[set[str]] = [
    {"errors", "redact", "types", "names", "budget", "progress", "radiometry"},  # one home per concern
    {"storage", "storage_update"},  # where bytes live
    {"stac"},                       # finding items
    {"cog"},                        # headers and tile reads
    {"collection"},                 # items + headers as GeoParquet per date
    {"raster"},                     # pixel-grid rules, no I/O
    {"read", "load"},               # eager reads and the lazy datacube
    {"plan"},                       # what a read or a load will request and cost
    {"products", "interop"},        # NDVI, time series, outputs, AOIs; TorchGeo's view
    {"workspace"},                  # named collections
    {"api"},                        # the front door
    {"cli", "testing"},             # the command line; the local servers of the tests
]
STEP = {unit: i for i, units in enumerate(FLOW) for unit in units}
# What the Dagster wiring may import from the library: the packages' front modules and the
# products' public modules, never a module deeper in the flow (and never a private name).
PIPELINE_API = {
    "rasteret_core", "rasteret_core.errors", "rasteret_core.names", "rasteret_core.storage", "rasteret_core.budget",
    "rasteret_core.stac", "rasteret_core.cog", "rasteret_core.collection", "rasteret_core.read",
    "rasteret_core.plan", "rasteret_core.workspace",
    "rasteret_core.products.aois", "rasteret_core.products.ndvi_dates", "rasteret_core.products.ndvi_runs", "rasteret_core.products.ndvi_preview",
    "rasteret_core.products.timeseries", "rasteret_core.products.timeseries_chart",
    "rasteret_core.testing.object_store", "rasteret_core.testing.synthetic",  # the offline demo's servers
}


def _modules() -> dict[str, Path]:
    mods = {}
    for package in ("rasteret_core", "rasteret_pipelines"):
        for path in (ROOT / package).rglob("*.py"):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            mods[".".join(parts)] = path
    return mods


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, str, bool]]:
    """(imported module, imported name, inside a function) for every project import of a module."""
    tree = ast.parse(path.read_text())
    in_function = {id(node) for fn in ast.walk(tree) if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef))
                   for node in ast.walk(fn)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [(alias.name, "") for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [(f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base, a.name) for a in node.names]
        else:
            continue
        for target, imported in targets:
            while target and target not in MODULES:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.append((target, imported, id(node) in in_function))
    return found


EDGES = {name: _imports(name, path) for name, path in MODULES.items()}


def _unit(module: str) -> str:
    parts = module.split(".")
    return parts[1] if parts[0] == "rasteret_core" and len(parts) > 1 else parts[0]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return out


def test_the_walk_sees_the_imports_inside_functions():
    # the command line imports its heavy modules when a command runs: the walk must see them
    inner = [(m, t) for m, edges in EDGES.items() for t, _, in_fn in edges if in_fn]
    assert ("rasteret_core.cli.read", "rasteret_core.api") in inner


def test_no_import_loop_between_modules():
    graph = {m: {t for t, _, _ in edges} for m, edges in EDGES.items()}
    assert _cycles(graph) == []


def test_no_import_loop_between_the_library_units():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, edges in EDGES.items():
        for target, _, _ in edges:
            if module.startswith("rasteret_core.") and target.startswith("rasteret_core."):
                if _unit(module) != _unit(target):
                    graph[_unit(module)].add(_unit(target))
    assert _cycles(graph) == []


def test_every_library_unit_has_its_place_in_the_flow():
    units = {_unit(m) for m in MODULES if m.startswith("rasteret_core.")}
    assert units - set(STEP) == set(), "place the new unit in FLOW"


def test_imports_go_down_the_flow_never_up():
    upward = []
    for module, edges in EDGES.items():
        if not module.startswith("rasteret_core.") or _unit(module) not in STEP:
            continue
        for target, _, in_function in edges:
            if target.startswith("rasteret_core.") and STEP[_unit(target)] > STEP[_unit(module)]:
                upward.append(f"{module} -> {target}{' (inside a function)' if in_function else ''}")
    assert upward == []


def test_the_library_does_not_import_dagster():
    offenders = [m for m, p in MODULES.items() if m.startswith("rasteret_core")
                 for node in ast.walk(ast.parse(p.read_text()))
                 if isinstance(node, (ast.Import, ast.ImportFrom))
                 and any((getattr(node, "module", None) or a.name).split(".")[0] in ("dagster", "rasteret_pipelines")
                         for a in node.names)]
    assert offenders == []


@pytest.mark.parametrize("module", sorted(m for m in MODULES if m.startswith("rasteret_pipelines")))
def test_pipelines_use_the_public_library_api_only(module):
    used = [(t, n) for t, n, _ in EDGES[module] if t.startswith("rasteret_core")]
    internal = [f"{t}.{n}" for t, n in used if t not in PIPELINE_API or n.startswith("_")]
    assert internal == []
