"""Training pipeline: prepared pairs and their cache, flip augmentation on a real face, LOSO folds,
metrics against hand-computed values, determinism, cancellation, and the learning test.

Real parts throughout: the synthetic generator on real photos, MediaPipe, Farneback, the tiny
open_clip towers. The learning test trains the tiny model by LOSO and must clearly beat the
all-positive baseline on held-out subjects.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.aus import AUCode, Side
from microau_gui.core.types import Sample
from microau_gui.face.landmarks import FaceMesh, load_rgb
from microau_gui.face.pair import align_pair
from microau_gui.face.regions import au_polygons, region_masks
from microau_gui.model.config import MicroAUConfig
from microau_gui.model.losses import cooccurrence_prior
from microau_gui.model.network import MicroAUCLIP
from microau_gui.training.augment import flip_flow, flip_landmarks, flip_pair, jitter_pair, swap_sides
from microau_gui.training.experiment import cross_validate
from microau_gui.training.metrics import au_report
from microau_gui.training.protocols import Fold, holdout_fold, loso_folds, split, subject_folds
from microau_gui.pairs.samples import (
    PairSample,
    PrepSettings,
    au_labels,
    labels_matrix,
    prepare_samples,
)
from microau_gui.core.progress import Cancelled
from microau_gui.training.trainer import TrainSettings, train_model

from test_training_fixtures import pair_cache, synth_data, synth_root  # noqa: F401

CROP_PX = 112


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Two threads on two shared cores spin-wait on each other: several times slower here."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# -- labels ------------------------------------------------------------------------------------

def test_labels_count_either_side_as_the_au_and_ignore_uncertain_codes():
    aus = (AUCode(12, Side.LEFT), AUCode(4), AUCode(6, uncertain=True), AUCode(25))
    labels = au_labels(aus, DEFAULT_VOCAB)
    on = {code for code, value in zip(DEFAULT_VOCAB, labels) if value}
    assert on == {"AU12", "AU4"}  # L12 is AU12; uncertain AU6 and out-of-vocabulary AU25 are not


# -- flip augmentation on a real face ----------------------------------------------------------

@pytest.fixture(scope="module")
def astronaut_pairs(astronaut_path):
    """The astronaut photo and its mirror image, each cut by its own detected landmarks."""
    rgb = load_rgb(astronaut_path)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    with FaceMesh(static=True) as mesh:
        xy = mesh.detect(rgb).xy_img
        xy_mirrored = mesh.detect(mirrored).xy_img
    return align_pair(rgb, rgb, xy, CROP_PX), align_pair(mirrored, mirrored, xy_mirrored, CROP_PX)


def test_flipped_landmarks_match_a_real_detection_on_the_mirrored_photo(astronaut_pairs):
    original, mirrored = astronaut_pairs
    flipped = flip_landmarks(original.xy_crop, CROP_PX)
    for code in ("AU1", "AU6", "AU12", "AU15"):
        want = au_polygons(code, mirrored.xy_crop)
        got = au_polygons(code, flipped)
        for side in ("R", "L"):
            # The subject's right region of the flipped sample lies where MediaPipe puts the
            # right region in the mirrored photo: within 1-3 px on a 112 px crop (MediaPipe
            # itself is not exactly mirror-symmetric around this slightly turned mouth).
            error = np.linalg.norm(got[side] - want[side], axis=1).mean()
            assert error < 3.5, (code, side, error)
        # Without renumbering through MIRROR the right region would sit on the left half.
        unrenumbered = original.xy_crop.copy()
        unrenumbered[:, 0] = CROP_PX - 1 - unrenumbered[:, 0]
        wrong = au_polygons(code, unrenumbered)["R"]
        assert np.linalg.norm(wrong - want["R"], axis=1).mean() > 15


def test_flipped_masks_equal_masks_of_the_mirrored_photo(astronaut_pairs):
    original, mirrored = astronaut_pairs
    vocab = list(DEFAULT_VOCAB)
    got = region_masks(flip_landmarks(original.xy_crop, CROP_PX), CROP_PX, 14, vocab)
    want = region_masks(mirrored.xy_crop, CROP_PX, 14, vocab)
    # Masks are a few patches each, so one patch of MediaPipe asymmetry costs a lot of IoU;
    # the geometry must still agree on every AU and closely on average.
    ious = [(got[k] & want[k]).sum() / max(1, (got[k] | want[k]).sum()) for k in range(len(vocab))]
    assert min(ious) >= 0.45, dict(zip(vocab, ious))
    assert np.mean(ious) >= 0.75
    # And they are the patch-grid mirror of the original masks.
    grid_mirror = region_masks(original.xy_crop, CROP_PX, 14, vocab).reshape(-1, 14, 14)[:, :, ::-1]
    agreement = (got.reshape(-1, 14, 14) == grid_mirror).mean()
    assert agreement > 0.97


def test_flip_mirrors_crops_and_flow_and_swaps_au_sides(astronaut_pairs):
    original, _ = astronaut_pairs
    flow = np.zeros((CROP_PX, CROP_PX, 2), np.float32)
    flow[40:50, 10:20] = (1.5, -0.5)  # something on the image left moving right and up
    pair = PairSample(
        sample=Sample("01", "EP01_01", Path("sub01/EP01_01"), 0, 5, 9,
                      aus=(AUCode(12, Side.RIGHT), AUCode(4), AUCode(14, Side.LEFT))),
        reference=original.reference, target=original.target, flow=flow, xy_crop=original.xy_crop)
    flipped = flip_pair(pair)
    assert flipped.sample.aus == (AUCode(12, Side.LEFT), AUCode(4), AUCode(14, Side.RIGHT))
    assert swap_sides(flipped.sample.aus) == pair.sample.aus
    np.testing.assert_array_equal(flipped.target, original.target[:, ::-1])
    np.testing.assert_array_equal(flipped.reference, original.reference[:, ::-1])
    # The moving patch is now on the image right, moving left (u negated), still up.
    np.testing.assert_allclose(flipped.flow[40:50, CROP_PX - 20:CROP_PX - 10], np.tile((-1.5, -0.5), (10, 10, 1)))
    assert np.abs(flipped.flow[:, :CROP_PX // 2]).max() == 0
    np.testing.assert_array_equal(flip_flow(flip_flow(flow)), flow)
    # Occurrence labels do not change under a flip.
    np.testing.assert_array_equal(au_labels(flipped.sample.aus, DEFAULT_VOCAB), au_labels(pair.sample.aus, DEFAULT_VOCAB))


def test_colour_jitter_is_seeded_and_shared_by_both_crops_of_a_pair(astronaut_pairs):
    original, mirrored = astronaut_pairs
    # Two different crops (the photo and its mirror) so the pair has a real difference.
    reference, target = original.reference, mirrored.target
    strength = 0.2
    jittered = jitter_pair(reference, target, np.random.default_rng(7), strength)
    again = jitter_pair(reference, target, np.random.default_rng(7), strength)
    other = jitter_pair(reference, target, np.random.default_rng(8), strength)
    for image, source in zip(jittered, (reference, target)):
        assert image.dtype == np.uint8 and image.shape == source.shape
        assert not np.array_equal(image, source)  # the colours did change
        assert np.ptp(image) > 100  # a face is left, not a flat clipped frame
    np.testing.assert_array_equal(jittered[0], again[0])
    np.testing.assert_array_equal(jittered[1], again[1])
    assert not np.array_equal(jittered[0], other[0])

    # One gain and offset for the pair: the same crop twice stays the same crop twice.
    twice = jitter_pair(reference, reference, np.random.default_rng(7), strength)
    np.testing.assert_array_equal(twice[0], twice[1])
    # The gain and offset fitted on the reference predict the target too (up to clipping and
    # rounding), so the onset-apex difference is scaled alike everywhere: still pure motion.
    ref, ref_out = reference.astype(np.float64), jittered[0].astype(np.float64)
    unclipped = (ref_out > 0) & (ref_out < 255)
    gain, offset = np.polyfit(ref[unclipped], ref_out[unclipped], 1)
    assert 1 - strength <= gain <= 1 + strength and abs(offset) <= 255 * strength / 2 + 1
    tgt, tgt_out = target.astype(np.float64), jittered[1].astype(np.float64)
    assert np.abs(tgt_out - np.clip(gain * tgt + offset, 0, 255)).max() <= 1.5
    both = unclipped & (tgt_out > 0) & (tgt_out < 255)
    assert both.mean() > 0.5 and np.abs(tgt - ref)[both].max() > 10  # a real difference to keep
    assert np.abs((tgt_out - ref_out)[both] - gain * (tgt - ref)[both]).max() <= 2.0


# -- protocols ------------------------------------------------------------------------------------

def test_loso_puts_every_subject_in_test_once_and_never_on_both_sides():
    subjects = ["01", "02", "03", "04"]
    folds = loso_folds(subjects)
    assert [f.test_subjects for f in folds] == [("01",), ("02",), ("03",), ("04",)]
    items = [(s, i) for s in subjects for i in range(3)]
    for fold in folds:
        train, test = split(items, lambda item: item[0], fold)
        assert {s for s, _ in train}.isdisjoint({s for s, _ in test})
        assert len(train) + len(test) == len(items)
    with pytest.raises(AssertionError, match="both sides"):
        Fold("bad", ("01", "02"), ("02",))


def test_subject_wise_folds_partition_the_subjects():
    subjects = [f"{i:02d}" for i in range(1, 8)]
    folds = subject_folds(subjects, 3, seed=1)
    tested = [s for f in folds for s in f.test_subjects]
    assert sorted(tested) == subjects  # each subject tested exactly once
    for fold in folds:
        assert set(fold.train_subjects) == set(subjects) - set(fold.test_subjects)
    assert holdout_fold(subjects, ["03"]).train_subjects == tuple(s for s in subjects if s != "03")


def test_cross_validation_trains_each_fold_without_its_test_subject(synth_data, monkeypatch):
    import microau_gui.training.experiment as experiment

    seen: dict[str, set] = {}
    original = experiment.train_model
    all_labels = labels_matrix(synth_data.prepared.pairs, DEFAULT_VOCAB)

    def recording_train(config_, pairs, settings, **kwargs):
        seen[kwargs["stage"]] = {p.subject for p in pairs}
        result = original(config_, pairs, settings, **kwargs)
        # The GDLoss prior is the training split's co-occurrence, not the whole dataset's.
        prior = result.model.dependency_prior
        assert torch.allclose(prior, cooccurrence_prior(labels_matrix(pairs, DEFAULT_VOCAB)))
        assert not torch.allclose(prior, cooccurrence_prior(all_labels), atol=1e-4)
        return result

    monkeypatch.setattr(experiment, "train_model", recording_train)
    folds = loso_folds(synth_data.prepared.subjects)
    result = cross_validate("micro-au-clip", synth_data.prepared.pairs, folds, protocol="loso",
                            config=MicroAUConfig.tiny(), settings=TrainSettings(epochs=1, threads=1))
    for fold in folds:
        assert seen[fold.name] == set(fold.train_subjects)
        assert not seen[fold.name] & set(fold.test_subjects)
    assert result.report.n_samples == len(synth_data.prepared.pairs)  # every pair scored once


# -- metrics -----------------------------------------------------------------------------------------

def test_metrics_match_hand_computed_values():
    vocab = ("AU1", "AU4", "AU12")
    y_true = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 0, 0]])
    y_score = np.array([[0.9, 0.2, 0.7], [0.4, 0.6, 0.1], [0.6, 0.1, 0.5], [0.1, 0.3, 0.2]])
    report = au_report(y_true, y_score, vocab, method="m", protocol="loso", subjects=["a", "a", "b", "b"])
    au1, au4, au12 = report.per_au
    # AU1: predicted [1, 0, 1, 0] vs [1, 1, 0, 0]: TP 1, FP 1, FN 1 -> F1 0.5; the absent class
    # also has F1 0.5 -> macro 0.5; AUC: 3 of the 4 positive/negative pairs ranked right.
    assert au1.f1 == pytest.approx(0.5) and au1.macro_f1 == pytest.approx(0.5)
    assert au1.auc == pytest.approx(0.75) and au1.support == 2
    # AU12: predicted [1, 0, 1, 0] (0.5 counts as present) vs [1, 0, 1, 0]: perfect.
    assert au12.f1 == pytest.approx(1.0) and au12.auc == pytest.approx(1.0)
    # AU4 never occurs: F1 undefined, AUC undefined, left out of the means. Its macro-F1 is
    # still defined: the absent class has F1 6/7 (one false alarm of four), the present class 0.
    assert au4.f1 is None and au4.auc is None and au4.support == 0
    assert report.mean_f1 == pytest.approx(0.75)
    assert report.mean_macro_f1 == pytest.approx(0.75)
    data = report.to_json()
    assert data["per_au"]["AU4"] == {"f1": None, "macro_f1": pytest.approx(3 / 7, abs=1e-4), "auc": None, "support": 0}
    assert (data["n_samples"], data["n_subjects"]) == (4, 2)


# -- prepared pairs and their cache --------------------------------------------------------------

def test_prepared_pairs_are_cached_and_labels_stay_fresh(synth_data, pair_cache):
    samples = synth_data.dataset.samples[:4]
    settings = synth_data.prepared.settings
    again = prepare_samples(samples, settings, cache_dir=pair_cache)
    assert again.n_cached == len(samples)  # nothing recomputed
    by_key = {p.sample.key: p for p in synth_data.prepared.pairs}
    for pair in again.pairs:
        np.testing.assert_array_equal(pair.flow, by_key[pair.sample.key].flow)
        assert pair.reference.shape == (CROP_PX, CROP_PX, 3)
    # A corrected label is used at once: labels are not part of the cache.
    relabelled = [replace(s, aus=(AUCode(17),)) for s in samples]
    fresh = prepare_samples(relabelled, settings, cache_dir=pair_cache)
    assert fresh.n_cached == len(samples)
    assert all(p.sample.aus == (AUCode(17),) for p in fresh.pairs)
    # Another flow size is another cache entry.
    other = prepare_samples(samples[:1], PrepSettings(CROP_PX, flow_size=CROP_PX), cache_dir=pair_cache)
    assert other.n_cached == 0


def test_pairs_show_the_coded_movement(synth_data):
    """The flow of a pair is where its AU is: brow raisers move the brows up (v < 0)."""
    from microau_gui.face.motion import region_flow_features, region_pixel_masks

    ups = [p for p in synth_data.prepared.pairs if 1 in p.sample.au_numbers]
    assert ups
    for pair in ups:
        features = region_flow_features(pair.flow, region_pixel_masks(pair.xy_crop, CROP_PX, ["AU1"]))
        assert features[0, 1] < -0.1  # mean v inside the inner-brow region, crop px


# -- determinism and cancellation ----------------------------------------------------------------

def test_same_seed_gives_the_same_metrics_and_another_seed_does_not(synth_data):
    config = MicroAUConfig.tiny()
    pairs = synth_data.prepared.pairs
    folds = loso_folds(synth_data.prepared.subjects)[:1]

    def run(seed):
        return cross_validate("micro-au-clip", pairs, folds, protocol="loso", config=config,
                              settings=TrainSettings(epochs=2, seed=seed, threads=1))

    first, second, other = run(0), run(0), run(1)
    np.testing.assert_array_equal(first.scores, second.scores)
    assert first.report.to_json() == second.report.to_json()
    assert not np.array_equal(first.scores, other.scores)


def test_training_stops_when_cancelled(synth_data):
    stop = threading.Event()
    steps = []

    def progress(p):
        steps.append(p.step)
        if p.step == 2:
            stop.set()

    with pytest.raises(Cancelled):
        train_model(MicroAUConfig.tiny(), synth_data.prepared.pairs, TrainSettings(epochs=5, threads=1),
                    progress=progress, should_cancel=stop)
    assert steps == [1, 2]


def test_a_frozen_backbone_runs_once_per_pair_and_orientation(synth_data):
    pairs = synth_data.prepared.pairs[:12]
    torch.manual_seed(0)
    model = MicroAUCLIP(MicroAUConfig.tiny(train_backbone_blocks=0))
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    encoded = []
    model.backbone.register_forward_hook(lambda module, args, out: encoded.append(args[0].shape[0]))
    result = train_model(model, pairs, TrainSettings(epochs=3, batch_size=4, threads=1))
    assert sum(encoded) == 2 * len(pairs)  # both orientations once, then cached for 3 epochs
    assert all(torch.equal(before[k], v) for k, v in result.model.backbone.state_dict().items())
    assert result.epoch_losses[-1] < result.epoch_losses[0]  # the heads still learn


# -- the learning test ---------------------------------------------------------------------------

@pytest.mark.slow
def test_tiny_model_learns_micro_aus_on_held_out_subjects(synth_data):
    """LOSO on 3 subjects x 12 clips: the tiny model must clearly beat predicting every AU."""
    config = MicroAUConfig.tiny()
    folds = loso_folds(synth_data.prepared.subjects)
    pairs = synth_data.prepared.pairs
    model = cross_validate("micro-au-clip", pairs, folds, protocol="loso", config=config,
                           settings=TrainSettings(epochs=20, threads=1))
    baseline = cross_validate("all-positive", pairs, folds, protocol="loso", config=config)
    assert baseline.report.mean_f1 < 0.25
    assert model.report.mean_f1 >= baseline.report.mean_f1 + 0.25, (
        model.report.mean_f1, baseline.report.mean_f1)
    # Held-out AUC well above chance for most AUs: it ranks, not only thresholds.
    aucs = [s.auc for s in model.report.per_au if s.auc is not None]
    assert np.median(aucs) > 0.8
