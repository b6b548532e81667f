#!/usr/bin/env python3
"""Check the package's import structure: no import cycles between modules, no import running up the
layers (core <- concern packages <- ros <- nodes / apps <- cli), and no ROS below ros/ (the cores
are tested without a ROS graph: rclpy and message packages are imported from ros/ up only).

Reads the sources with :mod:`ast` (nothing is imported, so it runs without ROS or a GPU). Imports
inside functions are deferred by design and count only for the layer rule; cycles are checked over
module-level imports, the ones that run at load time. Exit status 1 with a list of what is wrong.

    python tools/check_imports.py [--graph]     # --graph prints the package-level dependencies
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "meta_robot"

# Rank of each top-level part; a module may import only parts of its own rank or below.
CORE = 0
CONCERN = 1  # sim, safety, skills, learning, ...: pure-Python cores (rclpy only where their job is ROS data)
ROS = 2
NODES = APPS = 3
CLI = 4
ROS_PACKAGES = {"rclpy", "launch", "launch_ros", "rosidl_runtime_py", "rosbag2_py"}
RANKS = {"core": CORE, "ros": ROS, "nodes": NODES, "apps": APPS, "cli": CLI, "__init__": CORE}


def is_ros(name: str) -> bool:
    """A ROS 2 Python package: rclpy, launch, an interface package (``*_msgs``, ``*_srvs``, ...)."""
    top = name.split(".")[0]
    return top in ROS_PACKAGES or top.endswith(("_msgs", "_srvs", "_interfaces"))


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def rank(module: str) -> int:
    return RANKS.get(part_of(module), CONCERN)


def imports(path: Path, module: str) -> tuple[set[str], set[str]]:
    """(module-level imports, deferred imports) of ``path`` within the package."""
    tree = ast.parse(path.read_text(), str(path))
    top, deferred = set(), set()
    is_package = path.name == "__init__.py"

    def targets(node: ast.AST) -> list[str]:
        if isinstance(node, ast.Import):
            return [a.name for a in node.names]
        if isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - node.level + 1]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            return [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        return []

    def visit(node: ast.AST, nested: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = nested or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda)
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                continue  # annotations only: never run
            for name in targets(child):
                if name == PACKAGE or name.startswith(PACKAGE + ".") or is_ros(name):
                    (deferred if inner else top).add(name)
            visit(child, inner)

    visit(tree, False)
    return top, deferred


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def resolve(name: str, modules: set[str]) -> str | None:
    """The package module an import name refers to (``a.b.func`` -> ``a.b``)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def find_cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    counter = [0]

    def strongconnect(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                strongconnect(w)
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
                cycles.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for v in sorted(edges):
        if v not in index:
            strongconnect(v)
    return cycles


def check(root: Path = ROOT) -> tuple[list[str], dict[str, set[str]]]:
    files = sorted((root / PACKAGE).rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    top_edges: dict[str, set[str]] = defaultdict(set)
    problems: list[str] = []
    parts: dict[str, set[str]] = defaultdict(set)
    for f in files:
        module = module_name(f, root)
        top, deferred = imports(f, module)
        ros = sorted({n.split(".")[0] for n in top | deferred if is_ros(n)})
        if ros and rank(module) < ROS:
            problems.append(f"{module} imports {', '.join(ros)}: ROS below ros/")
        targets = {resolve(name, modules): name in top for name in deferred} | {
            resolve(name, modules): True for name in top
        }
        for target, at_load in sorted((t, v) for t, v in targets.items() if t is not None):
            if target == module or (target.startswith(module + ".") and f.name == "__init__.py"):
                continue  # itself, or a package importing its own modules
            if at_load:
                top_edges[module].add(target)
            parts[part_of(module)].add(part_of(target))
            if rank(target) > rank(module):
                problems.append(f"{module} imports {target}: up from {part_of(module)} to {part_of(target)}")
    for cycle in find_cycles(top_edges):
        problems.append("import cycle at load time: " + " <-> ".join(cycle))
    for f in (root / PACKAGE).iterdir():
        if f.suffix == ".py" and f.stem not in ("__init__", "__main__", "cli"):
            problems.append(
                f"{module_name(f, root)}: only __init__, __main__ and cli belong at the package root"
            )
    for f in (root / PACKAGE / "nodes").glob("*.py"):
        if f.stem != "__init__" and not f.stem.endswith("_node"):
            problems.append(f"{module_name(f, root)}: nodes/ holds only *_node.py executables")
    return problems, parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--graph", action="store_true", help="print which parts import which")
    args = parser.parse_args()
    problems, parts = check()
    if args.graph:
        for part in sorted(parts, key=lambda p: (RANKS.get(p, CONCERN), p)):
            print(f"{part:>12} -> {', '.join(sorted(parts[part] - {part}))}")
    for problem in problems:
        print(problem)
    if not problems:
        print(f"{PACKAGE}: no import cycles, no upward imports")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
