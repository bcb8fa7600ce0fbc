"""The package's layers import only downward: simulator -> emulator runtime -> training and fitting -> tuning -> CLI.

Read from the source with ast (no import runs), so an arrow up the layers fails here whether or not it is exercised.
"""
import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: Folder of each sub-package (pyproject's package-dir maps simulator/ and training/ into galsr).
FOLDERS = {"galsr": ROOT / "galsr", "galsr.simulator": ROOT / "simulator", "galsr.training": ROOT / "training"}
LAYERS = [("galsr.simulator",), ("galsr.emulator",), ("galsr.training", "galsr"), ("galsr.training.tuning",),
          ("galsr.cli", "galsr.commands", "galsr.__main__")]


def layer_of(module):
    """Index in LAYERS of the most specific prefix naming ``module``."""
    best, best_len = None, -1
    for i, prefixes in enumerate(LAYERS):
        for p in prefixes:
            if (module == p or module.startswith(p + ".")) and len(p) > best_len:
                best, best_len = i, len(p)
    return best


def modules():
    """(dotted name, path) of every module of the package."""
    out = []
    for package, folder in FOLDERS.items():
        for path in folder.rglob("*.py"):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            name = ".".join([package, *parts])
            if package == "galsr" and rel.parts[0] in ("simulator", "training"):
                continue
            out.append((name, path))
    return out


def galsr_imports(path, module):
    """Absolute names of the galsr modules that ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    pkg = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
            found += [base] + [f"{base}.{a.name}" for a in node.names]
    return sorted({n for n in found if n == "galsr" or n.startswith("galsr.")})


def test_every_module_has_a_layer():
    assert {name for name, _ in modules()} >= {"galsr.simulator.render", "galsr.emulator.emulator",
                                               "galsr.training.train", "galsr.fitting", "galsr.cli"}
    assert all(layer_of(name) is not None for name, _ in modules())


@pytest.mark.parametrize("name,path", modules(), ids=[m for m, _ in modules()])
def test_imports_point_down_the_layers(name, path):
    if name == "galsr":
        return  # the lazy facade: it names the public API of every layer, importing none of it at load
    mine = layer_of(name)
    # "from galsr.x import name" may name a module or an object: judge by the longest prefix that is a module
    known = {m for m, _ in modules()}
    up = []
    for target in galsr_imports(path, name):
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target in known and layer_of(target) > mine:
            up.append(target)
    assert not up, f"{name} (layer {mine}) imports upward: {up}"
