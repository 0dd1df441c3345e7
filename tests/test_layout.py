"""The package layout's rules (docs/architecture.md): every module documented, imports following
the data flow, and the light modules loading neither TensorFlow nor the terminal library."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colorize_cli"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
# The data flow: a package may import the top level and the packages before it.
FLOW = ["imaging", "data", "nets", "training", "inference"]
# Fine-tuning starts from a trained generator, loaded by the one safe loader.
EXCEPTIONS = {("training/gan.py", "inference")}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def imported_packages(path: Path) -> set[str]:
    """The colorize_cli subpackages (or top-level modules) `path` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "colorize_cli" and len(parts) > 1:
                found.add(parts[1])
    return found


def test_every_module_is_in_the_architecture_page() -> None:
    page = ARCHITECTURE.read_text()
    missing = [
        str(p.relative_to(PACKAGE))
        for p in modules()
        if p.name not in page and str(p.relative_to(PACKAGE)) not in page
    ]
    assert not missing, f"docs/architecture.md does not list {missing}"


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_data_flow(path: Path) -> None:
    relative = path.relative_to(PACKAGE)
    if len(relative.parts) == 1 or relative.parts[0] not in FLOW:
        return  # the top level and commands/ may import anything
    rank = FLOW.index(relative.parts[0])
    for package in imported_packages(path) & set(FLOW):
        allowed = FLOW.index(package) <= rank or (relative.as_posix(), package) in EXCEPTIONS
        assert allowed, f"{relative} imports {package}/, which comes after it in the flow"


def _loaded_by(code: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_light_modules_load_no_tensorflow_and_library_modules_no_rich() -> None:
    light = [
        "colorize_cli.config",
        "colorize_cli.data.prepare",
        "colorize_cli.data.shards",
        "colorize_cli.imaging.metrics",
        "colorize_cli.inference.model_info",
        "colorize_cli.nets.models",
        "colorize_cli.nets.recipes",
        "colorize_cli.training.run_dir",
    ]
    loaded = _loaded_by("\n".join(f"import {name}" for name in light))
    assert "tensorflow" not in loaded and "keras" not in loaded
    assert "rich" not in loaded, "a library module that takes a progress sink loaded rich"
