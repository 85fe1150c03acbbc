"""Fixtures of the fine-tuning and suggestion GUI tests: a coded synthetic project, a tiny parent
model the tests save themselves, and the window around them.

The project is the real synthetic generator's CASME II-style dataset (real public-domain face
photos, three subjects, four clips each, 112 px, the tiny backbone's crop size) read by the real
CASME II importer into a real SQLite project, so every clip is a video with a subject and one
expert-coded micro-expression. The parent is a tiny Micro-AU CLIP (the open_clip "tiny" ViT)
with seeded random weights, saved by the model layer: its scores mean little, but every part of
the fine-tune (MediaPipe, alignment, flow, token cache, training, checkpoint, registration) and
of inference runs for real. Prepared pairs and backbone tokens are cached in one folder per test
session (XDG_CACHE_HOME), so only the first fine-tune prepares them. No test here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from gui_fixtures import save_tiny_weights, shown_window

SUBJECTS = 3
CLIPS_PER_SUBJECT = 4
FACE_PX = 112
SEED = 5
PARENT = "parent-tiny"


@pytest.fixture(scope="session")
def ft_synth(tmp_path_factory) -> Path:
    """The generated dataset folder (coding.xlsx + sub01 ... sub03)."""
    from microau_gui.synth import generate_clips

    out = tmp_path_factory.mktemp("ft_synth")
    generate_clips(out, subjects=SUBJECTS, clips_per_subject=CLIPS_PER_SUBJECT, size=FACE_PX,
                   seed=SEED)
    return out


@pytest.fixture(scope="session")
def ft_weights(tmp_path_factory) -> Path:
    """A weights/ folder holding only the parent checkpoint."""
    return save_tiny_weights(tmp_path_factory.mktemp("ft_weights"), PARENT, "flow")


@pytest.fixture(scope="session")
def ft_cache_home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("ft_cache_home")


@pytest.fixture
def ft_project(tmp_path, ft_synth, ft_cache_home, monkeypatch) -> Path:
    """A fresh project file holding the dataset's expert events (media stay in ft_synth)."""
    from microau_gui.media import frame_index, open_media
    from microau_gui.store.importers import import_dataset
    from microau_gui.store.project import Project

    monkeypatch.setenv("XDG_CACHE_HOME", str(ft_cache_home))
    path = tmp_path / "lab" / "lab.maus"
    path.parent.mkdir()
    dataset = import_dataset("casme2", ft_synth / "coding.xlsx", ft_synth, frame_index=frame_index)
    project = Project.create(path)
    try:
        project.import_dataset(dataset, lambda media: open_media(media, fps=200.0, cache_frames=1))
    finally:
        project.close()
    return path


@pytest.fixture
def ft_window(qtbot, ft_weights):
    yield from shown_window(qtbot, ft_weights)


def open_project(qtbot, window, path: Path) -> None:
    """Open the project in the window and wait until the parent's first prediction is drawn."""
    with qtbot.waitSignal(window.session.prediction_made, timeout=120000):
        window.session.open_path(path)
    assert window.session.model.card.name == PARENT
