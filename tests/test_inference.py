"""The Predictor on real photos with a real tiny Micro-AU CLIP checkpoint, the reference policy,
checkpoint choice and the project predictions cache per model version."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from test_inference_fixtures import brow_raise, direct_probs, read_rgb, save_tiny_checkpoint, shifted

from microau_gui.core.errors import UserError
from microau_gui.face.regions import au_polygons
from microau_gui.inference.checkpoints import list_checkpoints, resolve_checkpoint
from microau_gui.inference.predictor import HEATMAP_MAX_PX, Predictor
from microau_gui.inference.reference import ReferencePolicy, parse_reference, reference_frame
from microau_gui.model.checkpoint import WEIGHTS_NAME, load_checkpoint, update_card
from microau_gui.store.project import Project
from microau_gui.store.records import MediaFacts


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """weights/ with two tiny checkpoints: "diff-a" (apex+diff) and "flow-b" (flow)."""
    folder = tmp_path_factory.mktemp("weights")
    save_tiny_checkpoint(folder / "diff-a", "apex+diff", seed=0)
    save_tiny_checkpoint(folder / "flow-b", "flow", seed=1)
    return folder


@pytest.fixture(scope="module")
def predictor(weights):
    with Predictor.from_checkpoint(weights / "diff-a", device="cpu", speed_mode="fp32") as loaded:
        yield loaded


@pytest.fixture(scope="module")
def astronaut(astronaut_path):
    return read_rgb(astronaut_path)


def test_a_face_pair_gives_a_complete_consistent_prediction(predictor, astronaut):
    reference = astronaut
    box = predictor.reference_landmarks(reference, 0).box
    target = shifted(brow_raise(reference, box), 1.0, 0.5)
    pred = predictor.predict(target, reference, frame_idx=7, reference_idx=0)

    assert pred.face_found and pred.frame_idx == 7 and pred.reference_idx == 0
    assert pred.model_version == predictor.card.version and pred.vocab == predictor.vocab
    assert pred.model_version.startswith("diff-a@")  # the card's full version
    n_au, grid = len(pred.vocab), predictor.grid_size
    assert pred.probs.shape == (n_au,) and np.all((pred.probs > 0) & (pred.probs < 1))
    assert pred.gda.shape == (n_au, n_au) and np.allclose(pred.gda.sum(axis=1), 1, atol=1e-4)
    assert pred.pta_grid.shape == (n_au, grid, grid)
    assert np.allclose(pred.pta_grid.reshape(n_au, -1).sum(axis=1), 1, atol=1e-4)

    height, width = astronaut.shape[:2]
    x0, y0, x1, y1 = pred.heatmap_box
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    assert pred.heatmaps.dtype == np.uint8 and pred.heatmaps.shape[0] == n_au
    map_h, map_w = pred.heatmaps.shape[1:]
    assert max(map_h, map_w) <= HEATMAP_MAX_PX  # drawn small, stretched over the box
    scale = map_w / (x1 - x0)  # map px per image px: one scale for both sides
    assert scale <= 1 and abs(map_h - (y1 - y0) * scale) <= 1
    assert np.all(pred.heatmaps.reshape(n_au, -1).max(axis=1) == 255)

    assert pred.landmarks_img.shape == (478, 2)
    fx0, fy0, fx1, fy1 = pred.face_box
    assert np.all((pred.landmarks_img >= [fx0, fy0]) & (pred.landmarks_img <= [fx1, fy1]))
    # The crop's centre maps into the face, and the face box lies inside the heatmap box.
    centre = pred.crop_to_img @ np.array([predictor.image_size / 2, predictor.image_size / 2, 1])
    assert fx0 < centre[0] < fx1 and fy0 < centre[1] < fy1
    assert x0 <= fx0 and y0 <= fy0 and fx1 <= x1 and fy1 <= y1

    # Region keys: lateral AUs per side, midline AUs whole; polygons in image px on the face.
    assert {"AU12/R", "AU12/L", "AU9"} <= set(pred.regions_img)
    assert "AU12" not in pred.regions_img and "AU9/R" not in pred.regions_img
    assert np.allclose(pred.regions_img["AU12/R"], au_polygons("AU12", pred.landmarks_img)["R"])
    for polygon in pred.regions_img.values():
        assert polygon.ndim == 2 and polygon.shape[1] == 2
        assert np.all((polygon >= [fx0 - 1, fy0 - 1]) & (polygon <= [fx1 + 1, fy1 + 1]))

    # Each AU's hottest heatmap pixel lies on (or within one patch of) that AU's region.
    patch_px = np.linalg.norm(pred.crop_to_img[:, 0]) * predictor.image_size / grid
    for k, code in enumerate(pred.vocab):
        hot_y, hot_x = np.unravel_index(np.argmax(pred.heatmaps[k]), pred.heatmaps[k].shape)
        hot = np.array([x0 + (hot_x + 0.5) / scale - 0.5, y0 + (hot_y + 0.5) / scale - 0.5],
                       np.float32)
        distances = [cv2.pointPolygonTest(p.astype(np.float32), (float(hot[0]), float(hot[1])), True)
                     for p in au_polygons(code, pred.landmarks_img).values()]
        assert max(distances) > -1.5 * patch_px, f"{code} heatmap peak is off its region"

    # The probabilities are exactly what the model says for training's preparation of the pair.
    model, _ = load_checkpoint(predictor.checkpoint)
    expected = direct_probs(model, reference, target, pred.landmarks_img)
    assert np.allclose(pred.probs, expected, atol=1e-5)


def test_a_frame_without_a_face_is_reported_not_raised(predictor):
    rng = np.random.default_rng(0)
    blank = np.full((240, 320, 3), 128, np.uint8)
    noise = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)
    pred = predictor.predict(noise, blank, frame_idx=12, reference_idx=3)
    assert not pred.face_found
    assert pred.frame_idx == 12 and pred.reference_idx == 3 and pred.model_version == predictor.card.version
    assert pred.probs is None and pred.heatmaps is None and pred.landmarks_img is None


def test_reference_tokens_are_computed_once_per_reference(weights, astronaut, camera_path):
    predictor = Predictor.from_checkpoint(weights / "diff-a", device="cpu", speed_mode="fp32")
    encoded: list[int] = []
    original = predictor.model.encode_tokens

    def counting(images):
        encoded.append(int(images.shape[0]))
        return original(images)

    predictor.model.encode_tokens = counting
    box = predictor.reference_landmarks(astronaut, 0).box
    targets = [shifted(brow_raise(astronaut, box, px), 0.5, 0) for px in (0.5, 1.0, 2.0)]
    preds = [predictor.predict(t, astronaut, i + 1, 0) for i, t in enumerate(targets)]
    # target + reference the first time, then the target alone while the reference stays.
    assert encoded == [2, 1, 1]
    other = read_rgb(camera_path)
    predictor.predict(shifted(other, 1, 0), other, 5, 0)  # same frame_idx, another picture
    assert encoded[-1] == 2

    fresh = Predictor.from_checkpoint(weights / "diff-a", device="cpu", speed_mode="fp32")
    for i, target in enumerate(targets):
        assert np.allclose(fresh.predict(target, astronaut, i + 1, 0).probs, preds[i].probs, atol=1e-5)
    assert len({tuple(np.round(p.probs, 5)) for p in preds}) == 3  # the movement changes the output
    predictor.close()
    fresh.close()


def test_predictions_round_trip_through_the_project_cache_per_model_version(weights, astronaut, tmp_path):
    with Predictor.from_checkpoint(weights / "flow-b", device="cpu", speed_mode="fp32") as predictor:
        box = predictor.reference_landmarks(astronaut, 0).box
    target = brow_raise(astronaut, box, 2.0)
    with Project.create(tmp_path / "p.maus") as project:
        video = project.add_video(tmp_path / "clip", MediaFacts(n_frames=50, fps=30.0, width=512, height=512),
                                  digest="x")
        stored = {}
        for name in ("diff-a", "flow-b"):
            with Predictor.from_checkpoint(weights / name, device="cpu", speed_mode="fp32") as predictor:
                pred = predictor.predict(target, astronaut, 10, 4)
                version = project.models.register(predictor.card, weights / name)
                project.predictions.put_many(video.id, version.id, [pred])
                stored[version.id] = pred
    with Project.open(tmp_path / "p.maus") as project:
        for version_id, pred in stored.items():
            back = project.predictions.get(video.id, version_id, 10, reference_idx=4)
            assert back.model_version == pred.model_version and back.face_found
            assert np.allclose(back.probs, pred.probs, atol=5e-4)
            assert np.allclose(back.gda, pred.gda, atol=5e-4)
            assert np.allclose(back.landmarks_img, pred.landmarks_img, atol=0.05)
            assert np.allclose(back.crop_to_img, pred.crop_to_img, atol=1e-4)
            assert project.predictions.get(video.id, version_id, 10, reference_idx=5) is None
        a, b = (project.predictions.get(video.id, v, 10).probs for v in stored)
        assert not np.allclose(a, b, atol=1e-3)  # two models, two cached answers


def test_reference_policies():
    assert reference_frame(100, ReferencePolicy.SLIDING, 30.0) == 94
    assert reference_frame(100, ReferencePolicy.SLIDING, 200.0) == 60
    assert reference_frame(3, ReferencePolicy.SLIDING, 30.0) == 0
    assert reference_frame(100, ReferencePolicy.ONSET, 30.0, onset_idx=80) == 80
    assert reference_frame(100, ReferencePolicy.FIXED, 30.0, fixed_idx=5) == 5
    assert reference_frame(100, "onset", 30.0) == 94  # no event selected: sliding
    assert reference_frame(100, ReferencePolicy.SLIDING, 30.0, window_s=0.5) == 85
    assert parse_reference("fixed:12") == (ReferencePolicy.FIXED, 12)
    assert parse_reference("Sliding") == (ReferencePolicy.SLIDING, None)
    with pytest.raises(UserError):
        parse_reference("fixed:x")


def test_which_checkpoint_runs(weights, tmp_path, monkeypatch):
    import microau_gui.inference.checkpoints as checkpoints

    infos = list_checkpoints(weights)
    assert [(i.name, i.path) for i in infos] == [("diff-a", weights / "diff-a"), ("flow-b", weights / "flow-b")]
    assert infos[0].card.input_mode == "apex+diff"

    monkeypatch.setattr(checkpoints, "weights_dir", lambda: weights)
    with pytest.raises(UserError, match="make demo-assets"):
        resolve_checkpoint(None, None)  # no project, no demo built in this weights folder
    assert resolve_checkpoint("flow-b", None) == weights / "flow-b"
    assert resolve_checkpoint(str(weights / "diff-a" / "card.json"), None) == weights / "diff-a"
    with Project.create(tmp_path / "p.maus") as project:
        version = project.models.add("flow-b", weights / "flow-b", ("AU1",))
        project.models.set_active(version.id)
        assert resolve_checkpoint(None, project) == weights / "flow-b"
        assert resolve_checkpoint("diff-a", project) == weights / "diff-a"
    with pytest.raises(UserError, match="no such checkpoint"):
        resolve_checkpoint("nope", None)


def test_bad_checkpoints_are_one_line_user_errors(weights, tmp_path):
    import shutil

    with pytest.raises(UserError, match="no checkpoint"):
        Predictor.from_checkpoint(tmp_path / "missing")
    broken = tmp_path / "broken"
    shutil.copytree(weights / "diff-a", broken)
    data = (broken / WEIGHTS_NAME).read_bytes()
    (broken / WEIGHTS_NAME).write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="corrupted"):
        Predictor.from_checkpoint(broken)
    not_ours = tmp_path / "not_ours"
    not_ours.mkdir()
    (not_ours / "card.json").write_text("{\"name\": 1}")
    (not_ours / WEIGHTS_NAME).write_bytes(b"nonsense")
    with pytest.raises(UserError) as err:
        Predictor.from_checkpoint(not_ours)
    assert "\n" not in str(err.value)
    with pytest.raises(UserError, match="speed mode"):
        Predictor.from_checkpoint(weights / "diff-a", speed_mode="int3")


def test_the_demo_flag_comes_from_the_card(weights, tmp_path):
    import shutil

    demo = tmp_path / "demo-tiny"
    shutil.copytree(weights / "flow-b", demo)
    update_card(demo, name="demo-tiny", training_settings={"is_demo": True})
    with Predictor.from_checkpoint(demo, device="cpu", speed_mode="fp32") as predictor:
        assert predictor.is_demo and predictor.card.name == "demo-tiny"
        assert not predictor.pretrained_loaded and predictor.device == "cpu"
    with Predictor.from_checkpoint(weights / "flow-b", device="cpu", speed_mode="fp32") as predictor:
        assert not predictor.is_demo
