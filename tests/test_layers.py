"""The layering of DESIGN.md section 3 holds at run time, not only for import-linter."""

import subprocess
import sys

import pytest

NON_GUI = [
    "microau_gui.core",
    "microau_gui.face",
    "microau_gui.media",
    "microau_gui.store",
    "microau_gui.pairs",
    "microau_gui.model",
    "microau_gui.training",
    "microau_gui.spotting",
    "microau_gui.synth",
    "microau_gui.inference",
]


def _all_modules(package: str) -> list[str]:
    import importlib
    import pkgutil

    pkg = importlib.import_module(package)
    return [package] + [m.name for m in pkgutil.walk_packages(pkg.__path__, prefix=package + ".")]


def _loaded_by_importing(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """The modules named in `forbidden` (or below them) that a fresh interpreter has loaded after
    importing every module of `package`."""
    modules = sorted(set(_all_modules(package)))
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        f"bad = sorted(m for m in sys.modules if any(m == f or m.startswith(f + '.') for f in {forbidden!r}))\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return [name for name in out.stdout.strip().split(",") if name]


@pytest.mark.parametrize("package", NON_GUI)
def test_non_gui_package_does_not_load_qt(package):
    loaded = _loaded_by_importing(package, ("PySide6", "pyqtgraph", "shiboken6"))
    assert loaded == [], f"{package} loaded Qt: {loaded}"


@pytest.mark.parametrize("module", ["microau_gui.model.card", "microau_gui.pairs.samples"])
def test_cards_and_pair_preparation_load_no_torch(module):
    """Every layer may read a model card, and inference and training share pair preparation:
    neither may drag torch (seconds of start-up, gigabytes on a GPU box) into a reader."""
    code = (f"import sys, {module}\n"
            "print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'open_clip'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "", f"{module} loaded {out.stdout.strip()[:200]}"


def test_session_layer_loads_no_widgets():
    """The session may use QtCore and QtGui (QUndoStack) but no widget or plot: import-linter
    cannot name PySide6.QtWidgets, so this is checked at run time."""
    loaded = _loaded_by_importing("microau_gui.session", ("PySide6.QtWidgets", "pyqtgraph"))
    assert loaded == [], f"the session layer loaded widgets: {loaded}"


def test_gui_sources_never_import_torch():
    from pathlib import Path

    import microau_gui.gui as gui

    offenders = []
    for path in Path(gui.__file__).parent.rglob("*.py"):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import torch", "from torch", "import open_clip", "from open_clip")):
                offenders.append(f"{path.name}: {stripped}")
    assert offenders == []
