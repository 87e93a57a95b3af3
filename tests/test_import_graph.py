"""The library's modules import each other in one direction only: no import cycle, however hidden.

An import placed inside a function still runs, and still ties the two modules together; it only
hides the cycle from a reader and from Python's start-up. So every import counts here, wherever it
is written, and importing ``a.b.c`` counts as importing the package ``a.b`` too (Python runs its
``__init__`` first), unless the importer lives inside it.
"""

import ast
from pathlib import Path

PACKAGE = "imagegen_lib"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in ROOT.rglob("*.py")}


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _with_parents(name: str, modules: dict[str, Path]) -> set[str]:
    parts = name.split(".")
    return {".".join(parts[:i]) for i in range(1, len(parts) + 1) if ".".join(parts[:i]) in modules}


def import_graph() -> dict[str, set[str]]:
    """Module -> the library modules it imports (anywhere in its code)."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        targets = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(node, name, path.name == "__init__.py")
                # `from pkg import sub` imports the submodule when `sub` is one
                found = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for target in found:
                if target.split(".")[0] == PACKAGE:
                    targets |= _with_parents(target, modules)
        # A module's own packages are already being imported when it runs (their __init__ started
        # first), so an import that passes through them does not run them again.
        graph[name] = targets - {name} - _with_parents(name, modules)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected group of more than one module (Tarjan), each sorted."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(v):
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
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_the_library_has_no_import_cycle():
    graph = import_graph()
    found = cycles(graph)
    described = ["; ".join(f"{a} -> {sorted(graph[a] & set(group))}" for a in group) for group in found]
    assert not found, "import cycles (move the shared helper below both modules):\n" + "\n".join(described)


def test_the_cycle_finder_sees_an_import_inside_a_function(tmp_path):
    code = {"a": "from . import b\n", "b": "def f():\n    from .a import x\n"}
    graph = {}
    for name, text in code.items():
        node_targets = set()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom):
                base = _resolve(node, f"{PACKAGE}.{name}", False)
                node_targets |= {base, *(f"{base}.{a.name}" for a in node.names)}
        graph[name] = {t.split(".")[-1] for t in node_targets} & set(code)
    assert cycles(graph) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


# What each package may import (besides itself): a topic stands on `core` and on the topics it
# builds on, never on one above it. A new package gets a row here; a new arrow is a design decision.
MAY_IMPORT = {
    "core": set(),
    "gan": {"core"},
    "vae": {"core"},
    "diffusion": {"core"},
    "sr": {"core", "gan"},  # the adversarial fine-tune reuses the GAN losses
    "toy": {"core", "gan"},  # the toy GANs reuse the image GANs' losses
    "generators": {"core", "gan", "vae", "diffusion"},
    "metrics": {"core", "generators"},  # `imagegen eval` samples any shipped generator
    "practice": {"core", "gan", "toy"},  # the drills train toy GANs with the real losses and step
    "book": {"core", "practice"},
    "cli": {"core", "gan", "vae", "diffusion", "sr", "metrics", "generators", "toy"},  # toy: `imagegen toy-sweep`
}


def _package_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_every_package_imports_only_the_layers_below_it():
    packages = {_package_of(m) for m in _modules()} - {""}
    assert packages == set(MAY_IMPORT), f"packages without a row in MAY_IMPORT, or rows without a package: " \
                                        f"{sorted(packages ^ set(MAY_IMPORT))}"
    wrong = []
    for module, targets in import_graph().items():
        own = _package_of(module)
        for target in targets:
            other = _package_of(target)
            if own and other and other != own and other not in MAY_IMPORT[own]:
                wrong.append(f"{module} imports {target}")
    assert not wrong, "imports against the layering (see MAY_IMPORT):\n" + "\n".join(sorted(wrong))
