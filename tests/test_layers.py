"""The floor plan holds: every module sits in a layer folder, and imports only point down.

docs/architecture.md draws these layers; this test reads every import of the package (those inside
functions too) and fails on one that points to a higher layer or across to a sibling folder."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "framerturbo"

# bottom to top; folders on one floor are siblings and must not import each other
FLOORS = [
    {"core"},
    {"media"},
    {"models"},
    {"denoising"},
    {"sampling", "data"},
    {"eval"},
    {"train"},
    {"tasks"},
    {"cli"},
    {""},  # the package face: framerturbo/__init__.py and __main__.py
]
RANK = {folder: i for i, floor in enumerate(FLOORS) for folder in floor}


def layer_of(module: str) -> str:
    """'framerturbo.models.unet' → 'models'; the package's own files → ''."""
    parts = module.split(".")[1:]
    return parts[0] if len(parts) > 1 or (parts and (PACKAGE / parts[0]).is_dir()) else ""


def module_name(path: Path) -> str:
    parts = ["framerturbo", *path.relative_to(PACKAGE).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, imported framerturbo module) for every import in the file, nested ones too."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import edm` imports a module
                sub = f"{target}.{alias.name}"
                is_module = (PACKAGE.parent / sub.replace(".", "/")).with_suffix(".py").is_file()
                found.append((node.lineno, sub if is_module else target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
    return [(line, t) for line, t in found if t == "framerturbo" or t.startswith("framerturbo.")]


def all_modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def test_every_module_lives_in_a_layer_folder():
    loose = [p.name for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")]
    assert not loose, f"modules at the package root, outside every layer folder: {loose}"
    unknown = {layer_of(module_name(p)) for p in all_modules()} - set(RANK)
    assert not unknown, f"folders that docs/architecture.md and FLOORS do not place: {unknown}"


@pytest.mark.parametrize("path", all_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path):
    here = layer_of(module_name(path))
    wrong = []
    for line, target in imports_of(path):
        there = layer_of(target)
        if RANK[there] > RANK[here] or (RANK[there] == RANK[here] and there != here):
            wrong.append(f"line {line}: {here or 'framerturbo'} → {there} ({target})")
    assert not wrong, f"{path.relative_to(PACKAGE)} imports upward or sideways: {wrong}"


def test_the_checker_sees_nested_and_relative_imports(tmp_path, monkeypatch):
    """The test above can fail: a function-level upward import is caught."""
    fake = PACKAGE / "core" / "edm.py"
    source = "def f():\n    from ..sampling import pipeline\n    return pipeline\n"
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: source)
    assert (2, "framerturbo.sampling.pipeline") in imports_of(fake)
    monkeypatch.undo()
    assert RANK[layer_of("framerturbo.sampling.pipeline")] > RANK[layer_of(module_name(fake))]


def floor_plan() -> dict[str, str]:
    """docs/architecture.md's picture: folder → the text of its entry."""
    doc = (PACKAGE.parents[1] / "docs" / "architecture.md").read_text()
    picture = doc.split("```\nframerturbo/\n", 1)[1].split("```", 1)[0]
    entries: dict[str, str] = {}
    folder = None
    for line in picture.splitlines():
        head = line[2:].split(" ", 1)[0] if line.startswith("  ") and not line.startswith("   ") \
            else ""
        if head.endswith("/"):
            folder = head[:-1]
        if folder:
            entries[folder] = entries.get(folder, "") + " " + line
    return entries


def test_the_architecture_picture_names_every_folder_and_module():
    plan = floor_plan()
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert folders <= set(plan), f"folders missing from docs/architecture.md: {folders - set(plan)}"
    missing = [f"{p.parent.name}/{p.stem}" for p in all_modules()
               if p.parent != PACKAGE and p.stem != "__init__"
               and not re.search(rf"\b{p.stem}\b", plan.get(p.parent.name, ""))]
    assert not missing, f"modules the picture in docs/architecture.md does not name: {missing}"
    assert set(plan) - {"configs"} <= set(RANK), "a folder in the picture has no floor in FLOORS"
