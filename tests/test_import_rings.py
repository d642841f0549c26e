"""The rings depend inward only: runtime → functional → nn → models, read from every module's imports
(``ast``, nothing is imported).  ``juanji.random`` (the global generator that initialisers and dropout draw
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


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    relative = Path(*name.split("."))
    return (ROOT.parent / relative).with_suffix(".py").exists() or (ROOT.parent / relative / "__init__.py").exists()


def juanji_imports(path: Path) -> set[str]:
    """Every juanji module ``path`` imports, relative imports resolved (``from .. import nn`` → juanji.nn)."""
    name = module_name(path)
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
                found.add(f"{base}.{alias.name}" if is_module(f"{base}.{alias.name}") else base)
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
    assert juanji_imports(ROOT / "functional" / "pool.py") == {"juanji.runtime.threads", "juanji.runtime.kernels",
                                                               "juanji.functional.geometry",
                                                               "juanji.functional.compiled.pool"}
