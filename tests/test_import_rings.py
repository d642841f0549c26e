"""The rings depend inward only: runtime → functional → nn → models, read from every module's imports
(``ast``, nothing is imported); the compiled kernels are leaves (they import only the runtime and the window
geometry); and no module of juanji reaches itself again through its imports.  ``juanji.random`` (the global generator that initialisers and dropout draw
from, as torch's default generator; it imports only NumPy) sits beside the rings at the package root,
where checkpoints and the command line reach it too: nn and models may use it."""
import ast
from pathlib import Path

import pytest

import juanji

ROOT = Path(juanji.__file__).parent

ALLOWED = {
    "juanji.runtime": {"juanji.runtime"},
    "juanji.functional": {"juanji.runtime", "juanji.functional"},
    "juanji.nn": {"juanji.runtime", "juanji.functional", "juanji.nn", "juanji.random"},
    "juanji.models": {"juanji.runtime", "juanji.functional", "juanji.nn", "juanji.models", "juanji.random"},
}


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str, root: Path = ROOT) -> bool:
    relative = Path(*name.split("."))
    return (root.parent / relative).with_suffix(".py").exists() or (root.parent / relative / "__init__.py").exists()


def juanji_imports(path: Path, root: Path = ROOT) -> set[str]:
    """Every juanji module ``path`` imports (at its top or inside a function), relative imports resolved
    (``from .. import nn`` → juanji.nn); ``root`` is the package's folder."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for alias in node.names:
                found.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}", root) else base)
    return {module for module in found if module == "juanji" or module.startswith("juanji.")}


def ring_of(module: str) -> str | None:
    return next((ring for ring in ALLOWED if module == ring or module.startswith(ring + ".")), None)


MODULES = sorted(path for path in ROOT.rglob("*.py") if ring_of(module_name(path)))


@pytest.mark.parametrize("path", MODULES, ids=lambda path: module_name(path))
def test_each_ring_imports_only_itself_and_the_rings_beneath(path):
    ring = ring_of(module_name(path))
    outside = {module for module in juanji_imports(path) if not any(
        module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED[ring])}
    assert not outside, f"{module_name(path)} ({ring}) imports {sorted(outside)}"


def test_the_reader_sees_relative_imports():
    """The check above would pass vacuously if relative imports were not resolved."""
    assert juanji_imports(ROOT / "nn" / "conv.py") >= {"juanji.functional.conv", "juanji.random",
                                                       "juanji.runtime.workspace", "juanji.nn.module"}
    assert "juanji.nn" in juanji_imports(ROOT / "models" / "resnet.py")
    assert juanji_imports(ROOT / "functional" / "pool.py") == {"juanji.runtime.threads", "juanji.functional.plan",
                                                               "juanji.functional.geometry",
                                                               "juanji.functional.compiled.pool"}


COMPILED = ROOT / "functional" / "compiled"
# The compiled loops take and return plain arrays: caches, running statistics and the choice of a kernel live
# in juanji.functional, which calls them.
COMPILED_MAY_IMPORT = ("juanji.runtime", "juanji.functional.geometry", "juanji.functional.compiled")


@pytest.mark.parametrize("path", sorted(COMPILED.glob("*.py")), ids=lambda path: module_name(path))
def test_compiled_kernels_are_leaves(path):
    outside = {module for module in juanji_imports(path)
               if not any(module == allowed or module.startswith(allowed + ".") for allowed in COMPILED_MAY_IMPORT)}
    assert not outside, f"{module_name(path)} imports {sorted(outside)}: the compiled kernels are leaves"


def import_cycles(root: Path) -> list[list[str]]:
    """The modules of the package in ``root`` that reach themselves again through their imports, as the
    strongly connected components (Tarjan) of the import graph that hold more than one module or a module
    importing itself; each sorted."""
    graph = {module_name(path, root): juanji_imports(path, root) for path in root.rglob("*.py")}
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(module):
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph[module] & graph.keys():
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while not component or component[-1] != module:
                component.append(stack.pop())
                on_stack.discard(component[-1])
            if len(component) > 1 or module in graph[module]:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return sorted(found)


def test_no_module_imports_itself_again():
    assert import_cycles(ROOT) == []


def test_a_planted_cycle_is_found(tmp_path):
    package = tmp_path / "juanji"
    (package / "functional").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "functional" / "__init__.py").write_text("from .norm import batch_norm\n")
    (package / "functional" / "norm.py").write_text("def batch_norm():\n    from .fused import sweep\n")
    (package / "functional" / "fused.py").write_text("from .norm import batch_norm\n")
    (package / "functional" / "plain.py").write_text("from . import norm\n")
    assert import_cycles(package) == [["juanji.functional.fused", "juanji.functional.norm"]]
