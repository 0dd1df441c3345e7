"""The package layout's rules (docs/architecture.md): every module documented by its path with the
public names it really has, imports following the data flow package by package, and the light
modules loading neither TensorFlow nor the terminal library."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "colorize_cli"
ARCHITECTURE = PACKAGE.parent / "docs" / "architecture.md"
# The layers, lowest first: a module imports only from its own layer and the ones before it. The
# leaves import nothing of the package; config.py's options objects are taken by every layer above.
LAYERS = [
    ("colorize_cli", "constants", "errors", "fsutil", "progress", "tf_setup"),
    ("config",),
    ("imaging",),
    ("data",),
    ("nets",),
    ("training",),
    ("inference",),
    ("serve",),
    ("commands", "cli", "__main__"),
]
LEAVES = {f"colorize_cli.{name}" for name in LAYERS[0][1:]}
# Imports against the flow, allowed only inside a function (never at load) and only these.
LAZY_EXCEPTIONS = {
    # TrainConfig checks a run's model, recipe and crop against nets/ when one is made.
    ("colorize_cli.config", "colorize_cli.nets.models"),
    ("colorize_cli.config", "colorize_cli.nets.recipes"),
}


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(name: str) -> int:
    """The rank of the module `name` (colorize_cli.x.y) in LAYERS."""
    parts = name.split(".")
    key = parts[1] if len(parts) > 1 else "colorize_cli"
    return next(rank for rank, names in enumerate(LAYERS) if key in names)


def _resolve(name: str) -> str:
    """`name` if it is a module of the package, else the module it is an attribute of."""
    while name.count(".") > 0:
        path = PACKAGE.parent / name.replace(".", "/")
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return name
        name = name.rsplit(".", 1)[0]
    return name


def package_imports(path: Path) -> list[tuple[str, bool]]:
    """(module of colorize_cli, imported lazily: inside a function) for every import in `path`."""
    found = []

    def visit(node: ast.AST, lazy: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            names = []
            if isinstance(child, ast.ImportFrom) and child.module and child.level == 0:
                names = [f"{child.module}.{alias.name}" for alias in child.names]
            elif isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            found.extend(
                (_resolve(name), inside) for name in names if name.split(".")[0] == "colorize_cli"
            )
            visit(child, inside)

    visit(ast.parse(path.read_text()), False)
    return found


def documented_rows() -> list[tuple[list[str], list[str]]]:
    """(module paths, public names) of every row of the architecture page's module tables. A
    name without a folder in a row's first cell is in the folder of the name before it."""
    rows = []
    folder = ""
    for line in ARCHITECTURE.read_text().splitlines():
        heading = re.match(r"## (?:`(\w+)/`|Top level)", line)
        if heading:
            folder = f"{heading.group(1)}/" if heading.group(1) else ""
        if not line.startswith("| `"):
            continue
        cells = line.split(" | ")
        paths, previous = [], folder
        for name in re.findall(r"`([^`]+\.py)`", cells[0]):
            previous = f"{folder}{name}" if "/" in name else f"{previous.rpartition('/')[0]}/{name}"
            paths.append(previous.lstrip("/"))
        names = re.findall(r"`([A-Za-z_][\w.]*)(?:\(.*?\))?(?: -> [^`]*)?`", cells[-1])
        rows.append((paths, names))
    return rows


def defined_names(path: Path) -> dict[str, set[str]]:
    """{top-level name: its attributes (a class's methods and fields)} that `path` defines."""
    tree = ast.parse(path.read_text())
    names: dict[str, set[str]] = {}
    for node in tree.body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            members = set()
            for item in node.body if isinstance(node, ast.ClassDef) else []:
                if isinstance(item, ast.FunctionDef):
                    members.add(item.name)
                elif isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
                    members.add(item.target.id)
            names[node.name] = members
            if node.name == "__getattr__":  # a module's lazy attributes: the names it answers
                for constant in ast.walk(node):
                    if isinstance(constant, ast.Constant) and isinstance(constant.value, str):
                        names.setdefault(constant.value, set())
        elif isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        for target in targets:
            if isinstance(target, ast.Name):
                names[target.id] = set()
    return names


def test_every_module_is_in_the_architecture_page_by_its_path() -> None:
    documented = [path for paths, _ in documented_rows() for path in paths]
    actual = {str(p.relative_to(PACKAGE)) for p in modules()}
    assert not actual - set(documented), (
        f"docs/architecture.md does not list {actual - set(documented)}"
    )
    assert not set(documented) - actual, f"docs/architecture.md lists {set(documented) - actual}"
    assert len(documented) == len(set(documented)), "a module is listed twice"


def test_the_public_names_of_the_architecture_page_exist() -> None:
    missing = []
    for paths, names in documented_rows():
        defined: dict[str, set[str]] = {}
        for path in paths:
            defined.update(defined_names(PACKAGE / path))
        for name in names:
            top, _, member = name.partition(".")
            if top not in defined or (member and member not in defined[top]):
                missing.append(f"{name} ({', '.join(paths)})")
    assert not missing, f"docs/architecture.md names what the modules do not define: {missing}"


def violations(importer: str, imports: list[tuple[str, bool]]) -> list[str]:
    """The imports of the module `importer` that break the layers."""
    found = []
    for imported, lazy in imports:
        if importer in LEAVES and imported != "colorize_cli":
            found.append(f"{importer} is a leaf but imports {imported}")
        elif layer(imported) > layer(importer) and not (
            lazy and (importer, imported) in LAZY_EXCEPTIONS
        ):
            found.append(f"{importer} imports {imported}, which comes after it in the flow")
    return found


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_layers(path: Path) -> None:
    assert not violations(module_name(path), package_imports(path))


def test_the_layer_rule_fails_when_the_config_cycle_comes_back(tmp_path: Path) -> None:
    # The cycle issue 20 removed: imaging -> config -> nets (-> imaging), all at load.
    at_load = tmp_path / "at_load.py"
    at_load.write_text("from colorize_cli.nets.models import PRESETS, model_config\n")
    assert violations("colorize_cli.config", package_imports(at_load))
    lazily = tmp_path / "lazily.py"
    lazily.write_text("def f():\n    from colorize_cli.nets import models\n")
    assert not violations("colorize_cli.config", package_imports(lazily))
    assert violations("colorize_cli.imaging.images", package_imports(lazily))
    leaf = tmp_path / "leaf.py"
    leaf.write_text("from colorize_cli import __version__, errors\n")
    assert violations("colorize_cli.fsutil", package_imports(leaf)) == [
        "colorize_cli.fsutil is a leaf but imports colorize_cli.errors"
    ]


def test_low_layers_load_no_higher_package() -> None:
    loaded = _loaded_by("import colorize_cli.imaging.images, colorize_cli.data.prepare")
    assert not [m for m in loaded if m.startswith(("colorize_cli.nets", "colorize_cli.training"))]
    config = _loaded_by("import colorize_cli.config")
    ours = {m for m in config if m.startswith("colorize_cli")}
    assert ours == {
        "colorize_cli",
        "colorize_cli.config",
        "colorize_cli.constants",
        "colorize_cli.errors",
    }


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
