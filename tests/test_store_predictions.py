"""Model versions and the per-frame predictions cache, on a real project file."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pytest
from test_store_fixtures import small_project

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.errors import UserError
from microau_gui.core.types import FramePrediction
from microau_gui.store.predictions import decode_prediction, encode_prediction
from microau_gui.store.project import Project

VOCAB = DEFAULT_VOCAB
N_AU = len(VOCAB)


@pytest.fixture
def project(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    yield project
    project.close()


def _prediction(frame_idx: int, rng: np.random.Generator, model: str = "v1",
                face_found: bool = True, grid: int = 14) -> FramePrediction:
    if not face_found:
        return FramePrediction(frame_idx=frame_idx, reference_idx=0, model_version=model,
                               vocab=VOCAB, face_found=False)
    gda = rng.random((N_AU, N_AU)).astype(np.float32)
    gda /= gda.sum(axis=1, keepdims=True)
    # PTA as the model makes it: softmax inside a region mask, zero outside.
    logits = rng.normal(size=(N_AU, grid * grid)).astype(np.float32)
    mask = rng.random((N_AU, grid * grid)) < 0.15
    mask[:, 0] = True
    pta = np.where(mask, np.exp(logits), 0)
    pta = (pta / pta.sum(axis=1, keepdims=True)).reshape(N_AU, grid, grid).astype(np.float32)
    crop_to_img = np.array([[1.7, 0.1, 220.5], [-0.1, 1.7, 95.25]])
    return FramePrediction(
        frame_idx=frame_idx, reference_idx=max(0, frame_idx - 40), model_version=model,
        vocab=VOCAB, face_found=True, probs=rng.random(N_AU).astype(np.float32), gda=gda,
        pta_grid=pta, face_box=(210, 80, 610, 530), crop_to_img=crop_to_img,
        landmarks_img=(rng.random((478, 2)) * 1000).astype(np.float32),
    )


def _assert_close(got: FramePrediction, want: FramePrediction) -> None:
    assert (got.frame_idx, got.reference_idx, got.face_found, got.vocab) == (
        want.frame_idx, want.reference_idx, want.face_found, want.vocab)
    if not want.face_found:
        assert got.probs is None and got.pta_grid is None
        return
    np.testing.assert_allclose(got.probs, want.probs, atol=5e-4)
    np.testing.assert_allclose(got.gda, want.gda, atol=5e-4)
    row_max = want.pta_grid.reshape(N_AU, -1).max(axis=1)[:, None, None]
    assert np.all(np.abs(got.pta_grid - want.pta_grid) <= row_max / 510 + 1e-7)
    assert np.all(got.pta_grid[want.pta_grid == 0] == 0)  # outside the region stays exactly 0
    assert got.face_box == want.face_box
    np.testing.assert_allclose(got.crop_to_img, want.crop_to_img, rtol=1e-6)
    span = np.abs(want.landmarks_img - want.landmarks_img.mean(axis=0)).max()
    assert np.abs(got.landmarks_img - want.landmarks_img).max() <= span / 32767 + 1e-3


def test_blob_round_trip_within_float16_tolerance_and_compact():
    rng = np.random.default_rng(0)
    want = _prediction(7, rng)
    blob = encode_prediction(want)
    got = decode_prediction(blob, 7, want.reference_idx, "v1", VOCAB)
    _assert_close(got, want)
    full_precision = (want.probs.nbytes + want.gda.nbytes + want.pta_grid.nbytes
                      + want.landmarks_img.nbytes)
    assert len(blob) < full_precision / 2.5


def test_cache_keeps_two_model_versions_apart(project, tmp_path):
    video = project.videos()[0]
    v1 = project.models.add("v1", tmp_path / "weights" / "v1", VOCAB, activate=True)
    v2 = project.models.add("v2", tmp_path / "weights" / "v2", VOCAB, parent_id=v1.id)
    rng = np.random.default_rng(1)
    first = [_prediction(f, rng, "v1") for f in range(video.n_frames)]
    second = [_prediction(f, rng, "v2") for f in range(0, video.n_frames, 2)]
    second[3] = _prediction(6, rng, "v2", face_found=False)
    assert project.predictions.put_many(video.id, v1.id, first) == video.n_frames
    project.predictions.put_many(video.id, v2.id, second)

    got1 = project.predictions.get(video.id, v1.id, 6)
    got2 = project.predictions.get(video.id, v2.id, 6)
    _assert_close(got1, first[6])
    _assert_close(got2, second[3])
    assert got1.model_version == "v1" and got2.model_version == "v2"
    assert project.predictions.has(video.id, v1.id, 5)
    assert not project.predictions.has(video.id, v2.id, 5)
    assert list(project.predictions.frames(video.id, v2.id)) == list(range(0, video.n_frames, 2))
    in_range = project.predictions.get_range(video.id, v1.id, 4, 9)
    assert [p.frame_idx for p in in_range] == [4, 5, 6, 7, 8]
    for got, want in zip(in_range, first[4:9]):
        _assert_close(got, want)

    trace = project.predictions.probs(video.id, v2.id)
    assert trace.vocab == VOCAB and trace.probs.shape == (len(second), N_AU)
    assert np.all(np.isnan(trace.probs[3]))  # no face at frame 6
    np.testing.assert_allclose(trace.probs[0], second[0].probs, atol=5e-4)

    # a different reference frame is a miss, the same one a hit
    assert project.predictions.get(video.id, v1.id, 6, reference_idx=99) is None
    assert project.predictions.get(video.id, v1.id, 6, reference_idx=first[6].reference_idx)

    assert project.predictions.clear(v2.id) == len(second)
    assert project.predictions.get(video.id, v2.id, 0) is None
    assert project.predictions.get(video.id, v1.id, 0) is not None


def test_predictions_survive_reopen_and_follow_their_video(project, tmp_path):
    video = project.videos()[1]
    version = project.models.add("v1", tmp_path / "v1", VOCAB)
    rng = np.random.default_rng(2)
    preds = [_prediction(f, rng, grid=7) for f in range(video.n_frames)]
    project.predictions.put_many(video.id, version.id, preds)
    path = project.path
    project.close()
    with Project.open(path) as again:
        for want in preds:
            _assert_close(again.predictions.get(video.id, version.id, want.frame_idx), want)
        again.remove_video(video.id)
        assert len(again.predictions.frames(video.id, version.id)) == 0


def test_model_versions_lineage_active_flag_and_rollback(project, tmp_path):
    models = project.models
    assert models.active() is None
    base = models.add("demo", tmp_path / "weights" / "demo", VOCAB, data_hash="sha1:aa",
                      metrics={"mean_f1": 0.31}, activate=True)
    tuned = models.add("tuned-1", tmp_path / "weights" / "tuned-1", VOCAB, parent_id=base.id,
                       data_hash="sha1:bb", metrics={"mean_f1": 0.44})
    assert models.active() == base
    assert models.set_active(tuned.id).active
    assert [v.name for v in models.list() if v.active] == ["tuned-1"]
    assert models.set_active(base.id).name == "demo"  # rollback
    assert models.get(tuned.id).parent_id == base.id
    assert models.find("tuned-1").metrics == {"mean_f1": 0.44}
    assert models.find("no-such-version") is None
    assert models.get(base.id).checkpoint == tmp_path / "weights" / "demo"
    with pytest.raises(UserError, match="already exists"):
        models.add("demo", tmp_path / "x", VOCAB)
    with pytest.raises(UserError, match="'AU99' is not a FACS code in the catalogue"):
        models.add("bad", tmp_path / "x", ("AU1", "AU99"))
    with pytest.raises(UserError, match="is active"):
        models.remove(base.id)
    models.set_active(tuned.id)
    with pytest.raises(UserError, match="parent of tuned-1"):
        models.remove(base.id)
    models.set_active(base.id)
    models.remove(tuned.id)
    assert [v.name for v in models.list()] == ["demo"]


@dataclass(frozen=True)
class _Card:
    """The card fields `ModelRegistry.register` reads (as `model.card.ModelCard` has them)."""

    name: str
    vocab: tuple[str, ...]
    training_data_hash: str | None = "sha1:cc"
    metrics: dict = field(default_factory=lambda: {"mean_f1": 0.4})
    created: str = "2026-12-01T10:00:00+00:00"
    version: str = ""  # ModelCard.version: name@hash of the weights and output-changing fields


def test_register_is_idempotent_and_refuses_clashes(project, tmp_path):
    """One door for every front end: registering the same checkpoint twice gives one version;
    another checkpoint under that name, or another vocabulary, is refused and changes nothing."""
    models = project.models
    folder = tmp_path / "weights" / "m1"
    folder.mkdir(parents=True)
    card = _Card("m1", VOCAB)
    first = models.register(card, folder)
    assert (first.name, first.vocab, first.data_hash, first.metrics, first.created_at, first.active) == (
        "m1", VOCAB, "sha1:cc", {"mean_f1": 0.4}, card.created, False)
    again = models.register(card, tmp_path / "weights" / ".." / "weights" / "m1", activate=True)
    assert again.id == first.id and again.active
    assert [v.name for v in models.list()] == ["m1"]

    other = tmp_path / "elsewhere" / "m1"
    other.mkdir(parents=True)
    with pytest.raises(UserError, match="another checkpoint"):
        models.register(card, other)
    with pytest.raises(UserError, match="other AUs"):
        models.register(_Card("m1", VOCAB[:3]), folder)
    assert [(v.name, v.checkpoint) for v in models.list()] == [("m1", folder)]

    child = models.register(_Card("m1-tuned", VOCAB), tmp_path / "weights" / "m1-tuned", parent_id=first.id)
    assert child.parent_id == first.id and models.active().name == "m1"


def test_prediction_with_the_wrong_vocabulary_is_refused(project, tmp_path):
    version = project.models.add("v1", tmp_path / "v1", VOCAB[:4])
    with pytest.raises(ValueError, match="vocabulary"):
        project.predictions.put_many(project.videos()[0].id, version.id,
                                     [_prediction(0, np.random.default_rng(3))])
    assert len(project.predictions.frames(project.videos()[0].id, version.id)) == 0


def test_an_edited_checkpoint_is_a_new_version_whose_cache_starts_empty(project, tmp_path):
    """The same folder with an edited card (another input mode, a reordered vocabulary) or new
    weights has another card version: its predictions must not come from the old one's cache."""
    models, video = project.models, project.videos()[0]
    folder = tmp_path / "weights" / "m1"
    folder.mkdir(parents=True)
    first = models.register(_Card("m1", VOCAB, version="m1@aaaaaaaaaaaa"), folder)
    assert first.card_version == "m1@aaaaaaaaaaaa"
    project.predictions.put_many(video.id, first.id, [_prediction(0, np.random.default_rng(1), "m1")])

    edited = models.register(_Card("m1", VOCAB[::-1], version="m1@bbbbbbbbbbbb"), folder)
    assert edited.id != first.id and edited.name == "m1@bbbbbbbbbbbb" and edited.vocab == VOCAB[::-1]
    assert len(project.predictions.frames(video.id, edited.id)) == 0
    assert project.predictions.get(video.id, edited.id, 0) is None
    # Registering either card again finds its own version and cache.
    assert models.register(_Card("m1", VOCAB[::-1], version="m1@bbbbbbbbbbbb"), folder).id == edited.id
    again = models.register(_Card("m1", VOCAB, version="m1@aaaaaaaaaaaa"), folder)
    assert again.id == first.id and len(project.predictions.frames(video.id, first.id)) == 1


def test_a_version_from_before_card_versions_is_claimed_by_its_checkpoint(project, tmp_path):
    legacy = project.models.add("old", tmp_path / "old", VOCAB)  # as the demo project stores it
    assert legacy.card_version is None
    claimed = project.models.register(_Card("old", VOCAB, version="old@cccccccccccc"), tmp_path / "old")
    assert claimed.id == legacy.id and claimed.card_version == "old@cccccccccccc"
    other = project.models.register(_Card("old", VOCAB, version="old@dddddddddddd"), tmp_path / "old")
    assert other.id != legacy.id
