"""Face geometry on real photos: MediaPipe landmarks, alignment, AU regions, masks, motion, `face` CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
import skimage.data

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.face.align import align_face, eye_centres, template_eye_centres, transform_points
from microau_gui.face.landmarks import NO_FACE, FaceMesh, load_rgb
from microau_gui.face.motion import (dense_flow, flow_image, region_flow_features,
                                     region_pixel_masks, remove_global_motion)
from microau_gui.face.pair import align_pair
from microau_gui.face.regions import MIRROR, au_polygons, region_masks

SIZE = 224


@pytest.fixture(scope="module")
def mesh():
    with FaceMesh(static=True) as m:
        yield m


@pytest.fixture(scope="module")
def photos(astronaut_path, camera_path, grace_hopper_path):
    return {"astronaut": load_rgb(astronaut_path), "camera": load_rgb(camera_path),
            "grace_hopper": load_rgb(grace_hopper_path)}


@pytest.fixture(scope="module")
def faces(mesh, photos):
    return {name: mesh.detect(rgb) for name, rgb in photos.items()}


FRONTAL = ("astronaut", "grace_hopper")  # camera.png is a three-quarter profile


@pytest.mark.parametrize("name", ["astronaut", "camera", "grace_hopper"])
def test_landmarks_found_on_real_photos(faces, photos, name):
    face = faces[name]
    assert face.found and face.n_faces >= 1
    assert face.xy_img.shape == (478, 2)
    height, width = photos[name].shape[:2]
    inside = (face.xy_img[:, 0] >= 0) & (face.xy_img[:, 0] < width) & \
             (face.xy_img[:, 1] >= 0) & (face.xy_img[:, 1] < height)
    assert inside.mean() > 0.99
    x0, y0, x1, y1 = face.box
    assert 20 < x1 - x0 < width and 20 < y1 - y0 < height


def test_image_without_a_face_gives_explicit_no_face(mesh):
    result = mesh.detect(skimage.data.coffee())
    assert result is NO_FACE or (not result.found and result.xy_img is None)
    assert not result


def test_largest_of_several_faces_wins(mesh, photos):
    big = photos["grace_hopper"]  # 600 x 512
    small = cv2.resize(photos["astronaut"], (256, 256))
    canvas = np.full((600, 512 + 256, 3), 255, np.uint8)
    canvas[:, :512] = big
    canvas[:256, 512:] = small
    face = mesh.detect(canvas)
    assert face.found
    assert face.xy_img[:, 0].mean() < 512, "the large Grace Hopper face must be chosen"


def test_tracking_mode_follows_a_moving_face(photos):
    """Tracking mode smooths over frames, so the face is followed after it settles."""
    rgb = photos["grace_hopper"]
    centres = []
    with FaceMesh(static=False) as tracker:
        for shift in [0, 0, 0] + [12] * 6:
            face = tracker.detect(np.roll(rgb, shift, axis=1))
            assert face.found
            centres.append(face.xy_img[:, 0].mean())
    assert centres[-1] - centres[2] == pytest.approx(12, abs=2), centres


@pytest.mark.parametrize("name", FRONTAL)
@pytest.mark.parametrize("size", [112, 224])
def test_alignment_puts_eye_centres_on_the_template(faces, photos, name, size):
    aligned = align_face(photos[name], faces[name].xy_img, size)
    assert aligned.crop.shape == (size, size, 3)
    error = np.linalg.norm(eye_centres(aligned.xy_crop) - template_eye_centres(size), axis=1)
    assert error.max() < 2.0, f"eye centres off by {error} px"
    # crop_to_img really inverts img_to_crop
    back = transform_points(aligned.crop_to_img, aligned.xy_crop)
    assert np.abs(back - faces[name].xy_img).max() < 1e-3


@pytest.mark.parametrize("size", [112, 224])
def test_turned_head_keeps_eye_line_and_whole_face_in_the_crop(faces, photos, size):
    """camera.png is a three-quarter view: its eyes are closer than a frontal face's, so the crop
    is scaled by the eye-to-nose-tip drop. The eye midpoint and the eye line still sit on the
    template's, and mouth and chin stay inside the crop."""
    aligned = align_face(photos["camera"], faces["camera"].xy_img, size)
    eyes = eye_centres(aligned.xy_crop)
    template = template_eye_centres(size)
    assert np.linalg.norm(eyes.mean(0) - template.mean(0)) < 2.0
    assert abs(eyes[1, 1] - eyes[0, 1]) < 1.0, "the eye line must be horizontal"
    assert np.linalg.norm(eyes[1] - eyes[0]) < np.linalg.norm(template[1] - template[0])


@pytest.mark.parametrize("name", ["astronaut", "camera", "grace_hopper"])
def test_crop_holds_brows_mouth_and_chin(faces, photos, name):
    xy = align_face(photos[name], faces[name].xy_img, SIZE).xy_crop
    for index in (61, 291, 152, 105, 334):  # lip corners, chin, brows
        assert 0 <= xy[index, 0] < SIZE and 0 <= xy[index, 1] < SIZE, index


@pytest.mark.parametrize("name", FRONTAL)
def test_aligned_crop_of_a_mirrored_photo_mirrors_the_original(mesh, faces, photos, name):
    """Tolerance: MediaPipe's eye landmarks are not exactly mirror-consistent (up to ~3 px on
    Grace Hopper), so (1) the central half of the mirrored crop maps to within 2.5% of the crop
    side (5.6 px at 224) of where the original crop's does, and (2) after a 2 px blur the mean grey
    difference is below 14 levels and below half that of an unrelated face."""
    rgb = photos[name]
    width = rgb.shape[1]
    flipped = np.ascontiguousarray(rgb[:, ::-1])
    original = align_face(rgb, faces[name].xy_img, SIZE)
    of_flipped = align_face(flipped, mesh.detect(flipped).xy_img, SIZE)
    central = np.array([[x, y] for x in (56, 112, 168) for y in (56, 112, 168)], float)
    where_original = transform_points(original.crop_to_img, central)
    mirrored_grid = central.copy()
    mirrored_grid[:, 0] = SIZE - 1 - mirrored_grid[:, 0]
    where_mirrored = transform_points(of_flipped.crop_to_img, mirrored_grid)
    where_mirrored[:, 0] = width - 1 - where_mirrored[:, 0]
    assert np.linalg.norm(where_original - where_mirrored, axis=1).max() < 0.025 * SIZE

    def blurred(im):
        return cv2.GaussianBlur(cv2.cvtColor(im, cv2.COLOR_RGB2GRAY).astype(np.float32), (0, 0), 2)

    diff = np.abs(blurred(np.ascontiguousarray(of_flipped.crop[:, ::-1])) - blurred(original.crop))
    assert diff.mean() < 14, diff.mean()
    other = "grace_hopper" if name == "astronaut" else "astronaut"
    unrelated = align_face(photos[other], faces[other].xy_img, SIZE).crop
    assert np.abs(blurred(unrelated) - blurred(original.crop)).mean() > 2 * diff.mean()


@pytest.mark.parametrize("name", FRONTAL)
def test_mirror_table_matches_detections_of_the_mirrored_photo(mesh, faces, photos, name):
    rgb = photos[name]
    width = rgb.shape[1]
    flipped_xy = mesh.detect(np.ascontiguousarray(rgb[:, ::-1])).xy_img.copy()
    flipped_xy[:, 0] = width - flipped_xy[:, 0]  # back into the original image's frame
    xy = faces[name].xy_img
    iod = np.linalg.norm(np.diff(eye_centres(xy), axis=0))
    errors = [np.linalg.norm(xy[i] - flipped_xy[j]) / iod for i, j in MIRROR.items()]
    # Landmark i of the photo sits where landmark MIRROR[i] sits in the mirrored photo.
    assert np.median(errors) < 0.06 and max(errors) < 0.2


@pytest.mark.parametrize("name", FRONTAL)
def test_region_geometry_follows_anatomy(faces, photos, name):
    aligned = align_face(photos[name], faces[name].xy_img, SIZE)
    xy = aligned.xy_crop
    eye_line_y = eye_centres(xy)[:, 1].mean()
    nose_tip_y = xy[1, 1]
    for code in ("AU1", "AU2", "AU4"):
        for polygon in au_polygons(code, xy).values():
            assert polygon[:, 1].mean() < eye_line_y, f"{code} must lie above the eye line"
            assert np.quantile(polygon[:, 1], 0.8) < eye_line_y
    for code in ("AU10", "AU12", "AU14", "AU15", "AU17"):
        for polygon in au_polygons(code, xy).values():
            assert polygon[:, 1].min() > nose_tip_y - 0.02 * SIZE, f"{code} must lie below the nose tip"
            assert polygon[:, 1].mean() > nose_tip_y
    for code in DEFAULT_VOCAB:
        halves = au_polygons(code, xy)
        if "R" in halves:
            right, left = halves["R"].mean(0), halves["L"].mean(0)
            assert right[0] < SIZE / 2 < left[0], f"{code}: subject's right half is image left"
            assert abs((SIZE - right[0]) - left[0]) < 0.05 * SIZE, f"{code} halves do not mirror"
            assert abs(right[1] - left[1]) < 0.05 * SIZE
        else:
            assert abs(halves["B"][:, 0].mean() - SIZE / 2) < 0.05 * SIZE


@pytest.mark.parametrize("name", ["astronaut", "camera", "grace_hopper"])
@pytest.mark.parametrize("grid", [14, 7])
def test_region_masks_are_non_empty_on_any_grid(faces, photos, name, grid):
    aligned = align_face(photos[name], faces[name].xy_img, SIZE)
    masks = region_masks(aligned.xy_crop, SIZE, grid, DEFAULT_VOCAB)
    assert masks.shape == (len(DEFAULT_VOCAB), grid * grid)
    assert masks.any(axis=1).all()
    assert not masks.all(axis=1).any(), "a region covering every patch is no region"
    brow = masks[DEFAULT_VOCAB.index("AU1")].reshape(grid, grid)
    chin = masks[DEFAULT_VOCAB.index("AU17")].reshape(grid, grid)
    assert np.nonzero(brow)[0].mean() < np.nonzero(chin)[0].mean()


@pytest.mark.parametrize("method", ["farneback", "dis"])
def test_pair_shares_one_transform_and_motion_is_found_where_it_happened(faces, photos, method):
    rgb = photos["grace_hopper"]
    xy = faces["grace_hopper"].xy_img
    # Move only the mouth-corner area by 1.5 px upwards, and the whole head by a tiny jitter.
    target = rgb.copy()
    corner = au_polygons("AU12", xy)["R"]
    mask = np.zeros(rgb.shape[:2], np.float32)
    cv2.fillPoly(mask, [np.round(corner).astype(np.int32)], 1.0)
    mask = cv2.GaussianBlur(mask, (0, 0), 4)
    grid_y, grid_x = np.mgrid[0:rgb.shape[0], 0:rgb.shape[1]].astype(np.float32)
    target = cv2.remap(rgb, grid_x, grid_y + 1.5 * mask * 2.0, cv2.INTER_LINEAR)
    target = cv2.warpAffine(target, np.float32([[1, 0, 0.6], [0, 1, -0.4]]), rgb.shape[1::-1],
                            borderMode=cv2.BORDER_REPLICATE)
    pair = align_pair(rgb, target, xy, SIZE)
    assert pair.reference.shape == pair.target.shape == (SIZE, SIZE, 3)
    flow = remove_global_motion(dense_flow(pair.reference, pair.target, method))
    masks = region_pixel_masks(pair.xy_crop, SIZE, DEFAULT_VOCAB)
    features = region_flow_features(flow, masks)
    mag = features[:, 2]
    k12 = DEFAULT_VOCAB.index("AU12")
    upper_face = [DEFAULT_VOCAB.index(c) for c in ("AU1", "AU2", "AU4", "AU5", "AU6", "AU7")]
    assert mag[k12] > 0.5, "a 3 px lip-corner movement must show up"
    assert mag[k12] > 4 * mag[upper_face].max(), "head jitter must not look like AU motion"
    image = flow_image(flow)
    assert image.shape == (SIZE, SIZE, 3) and image.dtype == np.uint8


def test_the_students_flow_keeps_motion_only_inside_the_face(faces, photos):
    """farneback-fast pairs are masked to the landmark hull (a background blob once cost the
    student whole AUs); Farneback's, which checkpoints were trained on, keep the background."""
    from microau_gui.face.pair import align_pair
    from microau_gui.pairs.samples import face_hull_mask, measure_flow

    rgb = photos["grace_hopper"]
    xy = faces["grace_hopper"].xy_img
    pair = align_pair(rgb, rgb, xy, SIZE)
    hull = face_hull_mask(pair.xy_crop, SIZE).astype(bool)
    # the target: the mouth corner raised and a textured background patch in the bottom-right
    # corner (below the jaw, outside the face) moved by 3 px
    target = pair.reference.copy()
    assert not hull[-40:, -40:].any()
    patch = np.random.default_rng(0).integers(0, 256, (48, 48, 3)).astype(np.uint8)
    patch = cv2.GaussianBlur(patch, (0, 0), 1.5)
    reference = pair.reference.copy()
    reference[-40:, -40:] = patch[:40, :40]
    target[-40:, -40:] = patch[3:43, :40]
    corner = cv2.fillPoly(np.zeros((SIZE, SIZE), np.float32),
                          [np.round(au_polygons("AU12", pair.xy_crop)["R"]).astype(np.int32)], 1.0)
    grid_y, grid_x = np.mgrid[0:SIZE, 0:SIZE].astype(np.float32)
    shift = 3.0 * cv2.GaussianBlur(corner, (0, 0), 4)
    target = cv2.remap(target, grid_x, grid_y + shift, cv2.INTER_LINEAR)
    background = np.abs(measure_flow(reference, target, pair.xy_crop, "farneback"))[-30:, -30:]
    assert background.max() > 1.0, "Farneback's pairs keep the background's motion"
    fast = measure_flow(reference, target, pair.xy_crop, "farneback-fast")
    assert not fast[~hull].any(), "farneback-fast pairs have no motion outside the face"
    k12 = DEFAULT_VOCAB.index("AU12")
    features = region_flow_features(fast, region_pixel_masks(pair.xy_crop, SIZE, DEFAULT_VOCAB))
    assert features[k12, 2] > 0.5, "the mouth corner's movement inside the face is kept"


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_eye_centres_are_the_means_of_the_eye_corners_to_the_bit(dtype):
    # Alignment, hence every crop and every stored score, depends on these to the last bit.
    xy = np.random.default_rng(3).normal(300, 150, (478, 2)).astype(dtype)
    expected = np.stack([xy[[33, 133]].mean(0), xy[[362, 263]].mean(0)])
    assert eye_centres(xy).dtype == expected.dtype
    assert np.array_equal(eye_centres(xy), expected)


def test_remove_global_motion_cancels_a_similarity():
    height = width = 64
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    theta, scale = 0.01, 1.01
    x, y = xs - width / 2, ys - height / 2
    flow = np.stack([(scale * np.cos(theta) - 1) * x - scale * np.sin(theta) * y + 0.7,
                     scale * np.sin(theta) * x + (scale * np.cos(theta) - 1) * y - 0.3], 2)
    local = flow.copy()
    local[10:20, 10:20, 1] += 1.0  # a local movement survives
    residual = remove_global_motion(local.astype(np.float32))
    assert np.abs(residual[30:, 30:]).max() < 1e-3
    assert residual[10:20, 10:20, 1].mean() == pytest.approx(1.0, abs=0.05)


def test_remove_global_motion_grids_are_cached_per_size_without_leaking_between_calls():
    # The pixel grids are built once per flow size (the spotter calls this every frame): a call at
    # another size in between must not change a result, and the result is the caller's to modify.
    rng = np.random.default_rng(4)
    flow = rng.normal(0, 0.5, (48, 40, 2)).astype(np.float32)
    weight = (rng.random((48, 40)) > 0.2).astype(np.float32)
    first = remove_global_motion(flow, weight=weight)
    remove_global_motion(rng.normal(0, 0.5, (30, 52, 2)).astype(np.float32))
    second = remove_global_motion(flow, weight=weight)
    assert np.array_equal(first, second)
    second += 1.0  # writable, and not a shared buffer
    assert np.array_equal(remove_global_motion(flow, weight=weight), first)


def _run_cli(*args):
    return subprocess.run([sys.executable, "main.py", *args], capture_output=True, text=True,
                          timeout=120)


def test_face_cli_draws_regions_and_prints_json(tmp_path, astronaut_path):
    out = tmp_path / "face.png"
    result = _run_cli("face", str(astronaut_path), "--draw", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["face_found"] and summary["n_landmarks"] == 478
    assert set(summary["regions"]) == set(DEFAULT_VOCAB)
    assert summary["regions"]["AU12"]["sides"] == ["L", "R"]
    picture = cv2.imread(str(out))
    assert picture is not None and min(picture.shape[:2]) > 300
    # The drawing is the photo with coloured regions: clearly not the plain photo zoomed.
    assert picture.std() > 20


def test_face_cli_errors_are_one_line(tmp_path):
    noface = tmp_path / "coffee.png"
    cv2.imwrite(str(noface), skimage.data.coffee()[:, :, ::-1])
    not_image = tmp_path / "notes.png"
    not_image.write_text("not an image")
    for path in (noface, not_image, tmp_path / "missing.png"):
        result = _run_cli("face", str(path))
        assert result.returncode != 0
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
        assert "Traceback" not in result.stderr
