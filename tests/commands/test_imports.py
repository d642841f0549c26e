"""Commands parse and print; what they share lives in the outer ring (juanji.runs ...): no command imports another."""
import ast
from pathlib import Path

import juanji.commands

COMMANDS = Path(juanji.commands.__file__).parent


def imported_modules(path: Path) -> set[str]:
    """Every module ``path`` imports, resolved to an absolute dotted name (``from .train import x`` in
    juanji/commands/show.py → juanji.commands.train)."""
    package = ["juanji", "commands"]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[:len(package) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            found.add(module)
            found |= {f"{module}.{alias.name}" for alias in node.names}    # from . import show
    return found


def test_no_command_imports_another():
    commands = {f"juanji.commands.{p.stem}" for p in COMMANDS.glob("*.py") if p.stem != "__init__"}
    assert len(commands) >= 4
    for path in COMMANDS.glob("*.py"):
        own = f"juanji.commands.{path.stem}"
        crossing = (imported_modules(path) & commands) - {own}
        assert not crossing, f"{path.name} imports {sorted(crossing)}"


def test_the_check_sees_relative_and_absolute_imports(tmp_path):
    sample = tmp_path / "x.py"
    sample.write_text("from .train import load_trained\nfrom . import show\nimport juanji.commands.zoo\n"
                      "from ..runs import Run\n")
    assert {"juanji.commands.train", "juanji.commands.show", "juanji.commands.zoo", "juanji.runs"} <= \
        imported_modules(sample)
