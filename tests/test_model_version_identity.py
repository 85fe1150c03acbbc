"""One model version identity everywhere (#15 D6): the predictor, the session's model slot and the
store's registry all name a model by its card's full version (`name@hash`), so the cached rows of
an edited checkpoint, which the registry keeps apart as `name@hash`, are served to the window.

Real tiny checkpoint, real project file, the real session and inference worker on their threads
(offscreen); the cached rows are planted with values the model would never produce, so the test
can tell a cached row from a fresh prediction.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from test_inference_fixtures import save_tiny_checkpoint
from test_session_fixtures import face_clip, session  # noqa: F401

from microau_gui.core.types import FramePrediction
from microau_gui.inference.predictor import Predictor
from microau_gui.inference.reference import ReferencePolicy, reference_frame
from microau_gui.media import open_media
from microau_gui.model.card import read_card
from microau_gui.session.models import model_choices
from microau_gui.store.project import Project

pytestmark = pytest.mark.qt_log_ignore(r"This plugin does not support propagateSizeHints")

PLANTED = 0.123  # no probability the tiny random model gives every AU of every frame


def _edit_card(checkpoint) -> None:
    """Change a field that changes outputs (the decision threshold), as a user editing
    card.json would; the weights stay."""
    path = checkpoint / "card.json"
    card = json.loads(path.read_text())
    card.setdefault("metrics", {})["threshold"] = 0.4
    path.write_text(json.dumps(card))


def test_the_cached_rows_of_an_edited_checkpoint_reach_the_window(tmp_path, face_clip, qtbot,
                                                                 session, monkeypatch):
    # The worker races speed modes at start-up; the planted rows are fp32's numeric class.
    load = Predictor.from_checkpoint.__func__
    monkeypatch.setattr(Predictor, "from_checkpoint",
                        classmethod(lambda cls, path, device="auto", speed_mode="auto", **kw:
                                    load(cls, path, device=device, speed_mode="fp32", **kw)))
    checkpoint = save_tiny_checkpoint(tmp_path / "weights" / "id-tiny", "apex", seed=1)
    path = tmp_path / "study.maus"
    with Project.create(path) as project:
        with open_media(face_clip) as source:
            video = project.add_video(face_clip, source)
        original = project.models.register(read_card(checkpoint), checkpoint)
        _edit_card(checkpoint)
        card = read_card(checkpoint)
        edited = project.models.register(card, checkpoint, activate=True)
        assert edited.id != original.id and edited.name == card.version == edited.version
        vocab = tuple(card.vocab)
        planted = [FramePrediction(
            frame_idx=f, reference_idx=reference_frame(f, ReferencePolicy.SLIDING, video.fps),
            model_version=edited.name, vocab=vocab, face_found=True,
            probs=np.full(len(vocab), PLANTED, np.float32)) for f in range(video.n_frames)]
        project.predictions.put_many(video.id, edited.id, planted, numerics="fp32")
        # The store hands its rows out under the same identity the predictor gives its own.
        assert project.predictions.get(video.id, edited.id, 3).model_version == card.version
        choices = model_choices(project, tmp_path / "weights")
        assert {c.version for c in choices} == {card.version, original.version}

    with qtbot.waitSignal(session.model_loaded, timeout=120000) as loaded:
        session.open_path(path)
    assert loaded.args[0].model_version == card.version
    assert session.model.model_version_id == edited.id  # the edited version, not the original

    def planted_row(prediction) -> bool:
        return (prediction.frame_idx == 20 and prediction.probs is not None
                and np.allclose(prediction.probs, PLANTED, atol=1e-3))

    # The frame on screen and a frame the coder moves to are drawn from the cache.
    with qtbot.waitSignal(session.prediction_made, timeout=60000,
                          check_params_cb=planted_row) as shown:
        session.seek(20)
    assert shown.args[0].frame_idx == 20 and shown.args[0].model_version == card.version
