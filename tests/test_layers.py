"""The layers of ``src/attnfer`` (CONTRIBUTING.md): no import runs back up, typer stays in cli.

Every ``import`` of every module is read with :mod:`ast`, those inside functions included (a lazy
import is still a dependency, and still a cycle when it runs back up). A module may import its
own top-level part and the parts of lower layers, never a part of its own layer or above. Only
the command line, ``src/attnfer/cli/``, imports typer.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "attnfer"

# Lowest first. The parts of one layer do not import each other.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("errors", "files", "precision", "preprocess"),
    ("data", "faces", "models"),
    ("pretrained",),
    ("export",),
    ("recognize", "train"),
    ("explain", "photos", "scale", "serve", "video"),
    ("annotate",),
    ("cli",),
    ("__main__",),
)
RANK = {part: rank for rank, parts in enumerate(LAYERS) for part in parts}


def module_name(path: Path) -> str:
    """``src/attnfer/data/readers/__init__.py`` -> ``attnfer.data.readers``."""
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The top-level part of an attnfer module: ``attnfer.data.readers`` -> ``data``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else PACKAGE


def is_module(module: str) -> bool:
    """Whether ``module`` (dotted, under attnfer) is a file or package in the source tree."""
    path = SRC.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def lazy_names() -> dict[str, str]:
    """The names the package itself imports on first use: ``{"Recognizer": "recognize", ...}``."""
    tree = ast.parse((SRC / PACKAGE / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_LAZY" for t in node.targets
        ):
            return ast.literal_eval(node.value)
    return {}


def imports_of(source: str, module: str, is_package: bool) -> set[tuple[str, int]]:
    """``(imported module, line)`` for every import of ``source`` (the text of ``module``), at any
    depth, relative ones resolved; other packages are included as written.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module, and a name
    the package ``attnfer`` loads lazily counts as an import of the module it comes from.
    """
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {(alias.name, node.lineno) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                if base == PACKAGE and alias.name in lazy_names():
                    target = f"{PACKAGE}.{lazy_names()[alias.name]}"
                elif not (base.startswith(PACKAGE) and is_module(target)):
                    target = base
                found.add((target, node.lineno))
    return found


def modules() -> list[tuple[str, Path]]:
    """Every module of the package: ``(dotted name, path)``."""
    return [(module_name(p), p) for p in sorted((SRC / PACKAGE).rglob("*.py"))]


def all_imports() -> list[tuple[str, str, str]]:
    """``(importing module, imported module, "path:line")`` for every import in the package."""
    out = []
    for name, path in modules():
        source = path.read_text(encoding="utf-8")
        for target, line in imports_of(source, name, path.name == "__init__.py"):
            out.append((name, target, f"{path.relative_to(SRC.parent)}:{line}"))
    return out


def upward(importer: str, target: str) -> bool:
    """Whether ``importer`` importing ``target`` runs up the layers (or across one).

    Any module may import the package itself (``__version__``). The package's ``__init__`` imports
    nothing of attnfer as it loads (every import of a submodule loads it first): the names it
    offers are loaded on first use, through its ``_LAZY`` table.
    """
    if target != PACKAGE and not target.startswith(PACKAGE + "."):
        return False
    a, b = part_of(importer), part_of(target)
    if b == PACKAGE:
        return False
    if a == PACKAGE:
        return True
    return a != b and RANK[b] >= RANK[a]


def test_every_part_has_a_layer() -> None:
    on_disk = {part_of(name) for name, _ in modules()} - {PACKAGE}
    assert on_disk == set(RANK), "place a new top-level part in LAYERS (and in CONTRIBUTING.md)"


def test_no_import_runs_up_the_layers() -> None:
    found = {}
    for importer, target, where in all_imports():
        if upward(importer, target):
            found.setdefault((importer, target), where)
    assert not found, "imports running up the layers (see CONTRIBUTING.md):\n" + "\n".join(
        f"  {where}: {a} -> {b}" for (a, b), where in sorted(found.items())
    )


def test_typer_only_in_the_command_line() -> None:
    found = sorted(
        f"{where}: {importer}"
        for importer, target, where in all_imports()
        if target.split(".")[0] == "typer" and part_of(importer) != "cli"
    )
    assert not found, "typer imported outside src/attnfer/cli/:\n" + "\n".join(found)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f():\n    from ...train import run\n", {"attnfer.train.run"}),
        ("from ...faces.framing import Framing\n", {"attnfer.faces.framing"}),
        ("from .. import dataset\n", {"attnfer.data.dataset"}),
        ("from ..labels import CANONICAL\n", {"attnfer.data.labels"}),
        ("from ... import errors\n", {"attnfer.errors"}),
        ("from attnfer import Recognizer\n", {"attnfer.recognize"}),
        ("from attnfer import __version__\n", {"attnfer"}),
        ("import typer\nfrom typer.core import TyperGroup\n", {"typer", "typer.core"}),
    ],
)
def test_imports_are_resolved_as_python_does(source: str, expected: set[str]) -> None:
    """The reader behind these tests, on a module ``attnfer.data.readers.example``."""
    found = imports_of(source, "attnfer.data.readers.example", is_package=False)
    assert {target for target, _ in found} == expected


def test_a_lazy_import_up_the_layers_is_caught() -> None:
    source = "import os\n\n\ndef f():\n    from ..train import run\n"
    assert imports_of(source, "attnfer.data.example", False) == {
        ("os", 1),
        ("attnfer.train.run", 5),
    }
    assert upward("attnfer.data.example", "attnfer.train.run")
    assert not upward("attnfer.train.run", "attnfer.data.dataset")
    assert upward("attnfer.recognize", "attnfer.train.run")  # one layer: independent parts
    assert not upward("attnfer.data.example", "os")
    assert not upward("attnfer.serve.app", "attnfer")  # __version__
    assert upward("attnfer", "attnfer.recognize")  # the package loads it lazily, by name


def test_video_loads_without_the_train_extra() -> None:
    """`attnfer video` needs the video extra, not Lightning: reading a recipe's clips imports
    the training code only when it is called."""
    import subprocess
    import sys

    code = "import sys, attnfer.video, attnfer.video.stream; assert 'lightning' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
