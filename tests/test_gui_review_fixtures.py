"""Fixtures of the review, agreement and fine-tuning GUI tests: a model, a short synthetic
interview with a known number of micro-expressions, and the window.

The interview is the real generator's (`synth.long_video`, real face photos, H.264), asked for a
denser schedule than its default (18 micro-expressions a minute, no macro) so 12 seconds hold a
few candidates for the queue. The model is the bundled demo checkpoint when `make demo-assets`
has built it, otherwise a tiny Micro-AU CLIP with random weights saved by the model layer: its
AU probabilities mean nothing, but the whole inference path runs for real. No test here.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
from gui_fixtures import demo_or_tiny_weights, shown_window


INTERVIEW_SECONDS = 12.0
INTERVIEW_SEED = 3


@pytest.fixture(scope="session")
def review_weights(tmp_path_factory) -> Path:
    """weights/ with the demo model, or a folder holding a freshly saved tiny random model."""
    return demo_or_tiny_weights(tmp_path_factory.mktemp("weights"))


@pytest.fixture(scope="session")
def interview_master(tmp_path_factory):
    from microau_gui.synth.long_video import LongConfig, generate_long_videos

    out = tmp_path_factory.mktemp("interview") / "long"
    config = replace(LongConfig(), micro_per_min=18.0, macro_per_min=0.0)
    return generate_long_videos(out, videos=1, seconds=INTERVIEW_SECONDS, seed=INTERVIEW_SEED,
                                config=config)


@pytest.fixture
def interview(tmp_path, interview_master) -> Path:
    """A private copy of the interview video (its project is created beside it)."""
    target = tmp_path / "interview" / interview_master.videos[0].name
    target.parent.mkdir(parents=True)
    shutil.copy2(interview_master.videos[0], target)
    return target


@pytest.fixture
def review_window(qtbot, review_weights):
    yield from shown_window(qtbot, review_weights)


def open_and_wait_for_model(qtbot, window, path) -> None:
    """Open PATH in the window and wait until the model's first prediction is drawn."""
    from microau_gui.gui import app as gui_app

    with qtbot.waitSignal(window.session.prediction_made, timeout=180000):
        gui_app.open_initial(window, window.session, str(path))
