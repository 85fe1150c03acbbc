"""Review suggestions (issue 7 part 4): each of the four kinds is found where it should be, and
nowhere else; ranking, merging and the project read path.

`rank_suggestions` is a pure function of cached probabilities and coded events, so most tests
build a probability trace by hand with one planted situation each. The last test reads them from
a real SQLite project through `suggest_for_project`.
"""

from __future__ import annotations

import numpy as np
import pytest

from microau_gui.core.au import DEFAULT_VOCAB
from microau_gui.core.aus import parse_au_string
from microau_gui.core.errors import UserError
from microau_gui.inference.suggest import KINDS, SuggestSettings, rank_suggestions, suggest_for_project
from microau_gui.store.predictions import ProbTrace
from microau_gui.store.records import Event

VOCAB = tuple(DEFAULT_VOCAB)
N_FRAMES = 200
QUIET = 0.1  # a probability far from every threshold


def _trace(**planted) -> ProbTrace:
    """A quiet trace of N_FRAMES with `AUx=[(frame or (start, stop), p), ...]` planted."""
    probs = np.full((N_FRAMES, len(VOCAB)), QUIET, np.float32)  # (n, n_au)
    for au, spots in planted.items():
        for where, p in spots:
            rows = slice(where, where + 1) if isinstance(where, int) else slice(*where)
            probs[rows, VOCAB.index(au)] = p
    return ProbTrace(frame_idx=np.arange(N_FRAMES, dtype=np.int64), probs=probs, vocab=VOCAB)


def _event(event_id: int, onset: int, apex: int, offset: int, aus: str, video_id: int = 1) -> Event:
    return Event(id=event_id, uid=f"e{event_id}", video_id=video_id, onset=onset, apex=apex,
                 offset=offset, aus=parse_au_string(aus).codes)


def _kinds(suggestions) -> list[tuple[str, int, str | None]]:
    return [(s.kind, s.frame_idx, s.au) for s in suggestions]


def test_a_quiet_trace_with_agreeing_events_suggests_nothing():
    events = [_event(i, 20 + 30 * i, 25 + 30 * i, 30 + 30 * i, "12") for i in range(6)]
    trace = _trace(AU12=[((20 + 30 * i, 31 + 30 * i), 0.95) for i in range(6)])
    assert rank_suggestions({1: trace}, events) == []


def test_coded_but_not_seen_and_seen_but_not_coded_are_disagreements_with_the_event():
    events = [_event(7, 40, 45, 50, "4")] + [_event(i, 100, 102, 104, "4+12") for i in range(8, 14)]
    # AU4 coded on event 7 but the model never sees it; AU12 seen strongly inside it, not coded
    trace = _trace(AU4=[((100, 105), 0.9)], AU12=[((42, 48), 0.97), ((100, 105), 0.9)])
    found = [s for s in rank_suggestions({1: trace}, events) if s.event_id == 7]
    by_au = {s.au: s for s in found}
    assert set(by_au) == {"AU4", "AU12"}
    assert all(s.kind == "disagreement" for s in found)
    assert by_au["AU4"].score == pytest.approx((0.5 - QUIET) / 0.5)
    assert by_au["AU12"].score == pytest.approx((0.97 - 0.5) / 0.5, abs=1e-6)
    assert 42 <= by_au["AU12"].frame_idx <= 47  # the model's peak, where the coder should look


def test_a_strong_detection_outside_every_event_is_a_possible_uncoded_expression():
    events = [_event(i, 10, 12, 14, "12") for i in range(6)]
    trace = _trace(AU12=[((10, 15), 0.9), (150, 0.92), (151, 0.92)])
    found = [s for s in rank_suggestions({1: trace}, events) if s.kind == "disagreement"]
    assert [(s.frame_idx, s.au, s.event_id) for s in found] == [(150, "AU12", None)]


def test_the_model_near_its_threshold_is_uncertain_and_a_long_stretch_is_one_suggestion():
    trace = _trace(AU9=[((60, 90), 0.53)])
    found = [s for s in rank_suggestions({1: trace}, [], SuggestSettings(min_gap_frames=50))
             if s.kind == "uncertain"]
    assert len(found) == 1 and found[0].au == "AU9" and 60 <= found[0].frame_idx < 90
    assert found[0].score == pytest.approx(0.6 * (1 - 0.03 / 0.15), abs=1e-5)  # weight x closeness


def test_a_rarely_coded_au_the_model_predicts_is_suggested_and_rarer_ranks_higher():
    events = ([_event(i, 5 + 4 * i, 6 + 4 * i, 7 + 4 * i, "12") for i in range(5)]
              + [_event(20, 100, 101, 102, "14"), _event(21, 104, 105, 106, "14"),
                 _event(22, 108, 109, 110, "17")])
    trace = _trace(AU12=[((150, 153), 0.7)], AU14=[((160, 163), 0.7)], AU17=[((180, 183), 0.7)])
    rare = [s for s in rank_suggestions({1: trace}, events, SuggestSettings(fire_threshold=0.95))
            if s.kind == "rare"]
    assert [s.au for s in rare] == ["AU17", "AU14"]  # AU12 is coded 5 times: not under-labelled
    assert rare[0].score > rare[1].score


def test_a_one_frame_spike_is_unstable_but_a_step_that_stays_is_not():
    trace = _trace(AU1=[(70, 0.75)], AU2=[((120, N_FRAMES), 0.75)])
    unstable = [s for s in rank_suggestions({1: trace}, [], SuggestSettings(fire_threshold=0.95,
                                                                            rare_max_labels=1))
                if s.kind == "unstable"]
    assert _kinds(unstable) == [("unstable", 70, "AU1")]


def test_suggestions_are_ranked_by_weighted_score_and_limited():
    events = [_event(1, 40, 45, 50, "4")]
    trace = _trace(AU9=[((150, 152), 0.52)], AU1=[(100, 0.9)])
    found = rank_suggestions({1: trace}, events)
    scores = [s.score for s in found]
    assert scores == sorted(scores, reverse=True)
    assert found[0].kind == "disagreement" and found[0].event_id == 1
    assert {s.kind for s in found} <= set(KINDS)
    assert len(rank_suggestions({1: trace}, events, SuggestSettings(limit=2))) == 2


def test_bad_settings_and_mixed_vocabularies_are_refused():
    with pytest.raises(UserError):
        SuggestSettings(threshold=1.5)
    with pytest.raises(UserError):
        SuggestSettings(kind_weights={"hunch": 1.0})
    other = ProbTrace(np.arange(3), np.zeros((3, 2), np.float32), ("AU1", "AU2"))
    with pytest.raises(ValueError):
        rank_suggestions({1: _trace(), 2: other}, [])


def test_suggest_for_project_reads_the_active_versions_cached_predictions(tmp_path):
    from microau_gui.core.types import FramePrediction
    from microau_gui.store.project import Project
    from microau_gui.store.records import MediaFacts

    clip = tmp_path / "clip.avi"
    clip.write_bytes(b"a stand-in: the store hashes the file, it never decodes it")
    with Project.create(tmp_path / "p.maus") as project:
        video = project.add_video(clip, MediaFacts(n_frames=30, fps=30.0, width=64, height=48))
        with pytest.raises(UserError, match="no active model"):
            suggest_for_project(project)
        version = project.models.add("m1", tmp_path / "m1", VOCAB, activate=True)
        assert suggest_for_project(project) == []  # nothing analysed yet
        probs = np.full((30, len(VOCAB)), QUIET, np.float32)
        probs[12:15, VOCAB.index("AU10")] = 0.93  # three frames: 100 ms at 30 fps
        project.predictions.put_many(video.id, version.id, [
            FramePrediction(frame_idx=t, reference_idx=max(t - 1, 0), probs=probs[t], face_found=True,
                            model_version="m1", vocab=VOCAB) for t in range(30)])
        found = suggest_for_project(project)
    assert [(s.kind, s.video_id, s.frame_idx, s.au) for s in found][:1] == \
        [("disagreement", video.id, 12, "AU10")]



def test_one_frame_firings_are_flicker_not_expressions_and_rank_last():
    """Issue 16: one-frame spikes filled the queue (36 items for 142 frames) and Y on one made a
    one-frame event. A firing shorter than the shortest plausible expression (40 ms: 8 frames at
    200 fps) is not an uncoded expression nor a rare AU; all spikes of an AU are one item."""
    spikes = [(f, 0.99) for f in (20, 50, 80, 110, 140, 170)]
    trace = _trace(AU6=spikes, AU12=[((60, 72), 0.95)])
    found = rank_suggestions({1: trace}, [], fps={1: 200.0})
    assert [(s.kind, s.au) for s in found if s.kind != "uncertain"] == [
        ("disagreement", "AU12"), ("rare", "AU12"), ("unstable", "AU6")]
    expression = found[0]
    assert expression.span == (60, 71) and 60 <= expression.frame_idx <= 71
    (flicker,) = [s for s in found if s.kind == "unstable"]
    assert "6 time(s)" in flicker.reason
    # expected value: a one-frame item covers 1/8 of a plausible expression at 200 fps
    assert flicker.score == pytest.approx(0.5 * (0.99 - QUIET) / 8, abs=1e-5)
    # at 30 fps the same 12-frame firing is still one item and the spikes still one
    assert len(rank_suggestions({1: trace}, [], fps={1: 30.0})) == len(found)


def test_neighbouring_frames_merge_into_one_interval_naming_every_au():
    trace = _trace(AU1=[((100, 110), 0.9)], AU2=[((104, 116), 0.92)])
    (item,) = [s for s in rank_suggestions({1: trace}, [], SuggestSettings(rare_max_labels=1))
               if s.kind == "disagreement"]
    assert item.au == "AU2" and item.span == (100, 115)
    assert "also AU1" in item.reason and "(frames 100-115)" in item.reason
