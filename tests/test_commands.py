"""Undoable annotation commands: each one, their names, and random sequences undone exactly."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_store_fixtures import aus, small_project

from microau_gui.core.aus import AUCode, Side
from microau_gui.core.errors import UserError
from microau_gui.store.commands import (
    AcceptPrediction,
    AddEvent,
    AddNote,
    DeleteEvent,
    MoveEventBoundary,
    SetEmotion,
    SetEventAUs,
)
from microau_gui.store.project import Project
from microau_gui.store.records import Boundary, PredictedEvent


@pytest.fixture
def project(tmp_path, astronaut_path):
    project = small_project(tmp_path, astronaut_path)
    yield project
    project.close()


def _undo_redo_exact(project: Project, command) -> None:
    """apply, revert, apply again: before == after revert, and redo == first apply."""
    before = project.dump()
    command.apply(project)
    applied = project.dump()
    assert applied != before
    command.revert(project)
    assert project.dump() == before
    command.apply(project)
    assert project.dump() == applied
    command.revert(project)
    assert project.dump() == before


def test_add_event(project):
    video = project.videos()[0]
    command = AddEvent(video.id, 1, 3, 8, aus("1+2"), emotion="surprise", coder="ann")
    assert command.name == "Add event"
    command.apply(project)
    event = project.event(command.event_id)
    assert (event.onset, event.apex, event.offset, event.aus_text) == (1, 3, 8, "1+2")
    assert event.source == "expert"
    assert command.name == f"Add event {event.id}"
    command.revert(project)
    _undo_redo_exact(project, command)


def test_delete_event_restores_id_aus_and_notes(project):
    event = project.events()[0]
    assert project.notes(event_id=event.id)
    command = DeleteEvent(event.id)
    assert command.name == f"Delete event {event.id}"
    _undo_redo_exact(project, command)
    assert project.event(event.id) == event


@pytest.mark.parametrize("boundary, frame_idx", [("onset", 1), ("apex", 8), ("offset", 12)])
def test_move_event_boundary(project, boundary, frame_idx):
    event = project.events()[0]  # 2, 5, 9
    command = MoveEventBoundary(event.id, boundary, frame_idx)
    assert command.name == f"Move {boundary} of event {event.id}"
    command.apply(project)
    assert project.event(event.id).frame(Boundary(boundary)) == frame_idx
    command.revert(project)
    assert project.event(event.id) == event
    _undo_redo_exact(project, command)


def test_move_boundary_past_another_is_refused_without_change(project):
    event = project.events()[0]
    before = project.dump()
    with pytest.raises(UserError, match="must not come after"):
        MoveEventBoundary(event.id, "onset", event.apex + 1).apply(project)
    with pytest.raises(UserError, match="beyond the last frame"):
        MoveEventBoundary(event.id, "offset", 10_000).apply(project)
    assert project.dump() == before


def test_set_event_aus_with_side_and_intensity(project):
    event = project.events()[0]
    codes = (AUCode(4, intensity="C"), AUCode(12, Side.RIGHT, "B"), AUCode(14, asymmetric=True))
    command = SetEventAUs(event.id, codes)
    assert command.name == f"Set AUs of event {event.id} to 4C+R12B+A14"
    command.apply(project)
    assert project.event(event.id).aus == codes
    assert SetEventAUs(event.id, ()).name == f"Clear AUs of event {event.id}"
    command.revert(project)
    _undo_redo_exact(project, command)
    with pytest.raises(UserError, match="AU99 is not in the AU catalogue"):
        SetEventAUs(event.id, (AUCode(99),)).apply(project)


def test_set_emotion(project):
    event = project.events()[0]
    command = SetEmotion(event.id, "repression")
    assert command.name == f"Set emotion of event {event.id} to repression"
    command.apply(project)
    assert project.event(event.id).emotion == "repression"
    command.revert(project)
    assert SetEmotion(event.id, "  ").name == f"Clear emotion of event {event.id}"
    _undo_redo_exact(project, command)


def test_accept_prediction_makes_an_accepted_event(project, tmp_path):
    video = project.videos()[1]
    version = project.models.add("demo", tmp_path / "demo", ("AU4", "AU12"))
    proposal = PredictedEvent(video.id, 2, 4, 7, aus("12"), model_version_id=version.id)
    command = AcceptPrediction(proposal, coder="ann")
    command.apply(project)
    event = project.event(command.event_id)
    assert command.name == f"Accept prediction as event {event.id}"
    assert (event.source, event.model_version_id, event.coder) == ("accepted", version.id, "ann")
    assert project.events(source="expert") and event not in project.events(source="expert")
    command.revert(project)
    _undo_redo_exact(project, command)


def test_add_note(project):
    event = project.events()[1]
    video = project.videos()[0]
    on_event = AddNote("AU12 onset unclear", event_id=event.id, author="ann")
    on_frame = AddNote("blink", video_id=video.id, frame_idx=3)
    assert on_event.name == f"Add note to event {event.id}"
    assert on_frame.name == f"Add note to frame 3 of video {video.id}"
    assert AddNote("x", video_id=video.id).name == f"Add note to video {video.id}"
    _undo_redo_exact(project, on_event)
    _undo_redo_exact(project, on_frame)
    with pytest.raises(UserError, match="outside video"):
        AddNote("late", video_id=video.id, frame_idx=video.n_frames).apply(project)


# -- random sequences ---------------------------------------------------------------------------

AU_CODES = st.builds(
    AUCode,
    number=st.sampled_from([1, 2, 4, 6, 7, 10, 12, 14, 17, 43]),
    side=st.sampled_from(list(Side)),
    intensity=st.sampled_from([None, "A", "B", "C", "D", "E"]),
    uncertain=st.booleans(),
)
OPS = st.lists(st.tuples(
    st.sampled_from(["add", "delete", "move", "aus", "emotion", "accept", "note", "undo"]),
    st.integers(0, 1000), st.integers(-1, 13), st.integers(0, 13), st.integers(0, 13),
    st.lists(AU_CODES, max_size=4), st.sampled_from([None, "happiness", "disgust", " "]),
), min_size=4, max_size=30)


def _effect_holds(command, project: Project, before: dict) -> None:
    """The command did what its name says (not merely touch modified_at)."""
    if isinstance(command, (AddEvent, AcceptPrediction)):
        added = project.event(command.event_id)
        assert added.source == ("accepted" if isinstance(command, AcceptPrediction) else "expert")
        assert len(project.dump()["events"]) == len(before["events"]) + 1
    elif isinstance(command, DeleteEvent):
        assert command.event_id not in {e.id for e in project.events()}
    elif isinstance(command, AddNote):
        assert len(project.dump()["notes"]) == len(before["notes"]) + 1
    elif isinstance(command, MoveEventBoundary):
        assert project.event(command.event_id).frame(command.boundary) == command.frame_idx
    elif isinstance(command, SetEventAUs):
        assert project.event(command.event_id).aus == tuple(dict.fromkeys(command.aus))
    elif isinstance(command, SetEmotion):
        assert project.event(command.event_id).emotion == ((command.emotion or "").strip() or None)
    else:
        raise AssertionError(f"no effect check for {command!r}")
    assert project.dump() != before


def _command(op, project: Project, model_id: int):
    kind, pick, a, b, c, codes, emotion = op
    videos = project.videos()
    events = project.events()
    video = videos[pick % len(videos)]
    onset, apex, offset = sorted((a, b, c)) if pick % 5 else (a, b, c)  # some invalid on purpose
    if kind == "add":
        return AddEvent(video.id, onset, apex, offset, codes, emotion=emotion, coder="hyp")
    if kind == "accept":
        return AcceptPrediction(PredictedEvent(video.id, onset, apex, offset, tuple(codes),
                                               model_version_id=model_id), coder="hyp")
    if kind == "note":
        if pick % 2 and events:
            return AddNote(f"note {a}", event_id=events[pick % len(events)].id)
        return AddNote(f"note {a}", video_id=video.id, frame_idx=a if a >= 0 else None)
    if not events:
        return None
    event = events[pick % len(events)]
    if kind == "delete":
        return DeleteEvent(event.id)
    if kind == "move":
        return MoveEventBoundary(event.id, list(Boundary)[pick % 3], a)
    if kind == "aus":
        return SetEventAUs(event.id, codes)
    return SetEmotion(event.id, emotion)


@pytest.fixture(scope="module")
def shared_project(tmp_path_factory, astronaut_path):
    """One project for every example: each example must leave it exactly as it found it."""
    folder = tmp_path_factory.mktemp("hyp")
    project = small_project(folder, astronaut_path)
    version = project.models.add("hyp", folder / "hyp", ("AU12",))
    yield project, version.id
    project.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS)
def test_random_command_sequences_revert_to_the_identical_store(shared_project, ops):
    """Long random sequences with undos in between (then new commands), each command checked
    for its effect; undoing everything gives the identical store, and redoing it all gives the
    identical end state."""
    project, model_id = shared_project
    start = project.dump()
    applied, states = [], [start]  # states[k]: the store after applied[:k]
    n_undone = 0
    for op in ops:
        if op[0] == "undo":
            if applied:
                applied.pop().revert(project)
                states.pop()
                n_undone += 1
                assert project.dump() == states[-1]
            continue
        command = _command(op, project, model_id)
        if command is None:
            continue
        before = project.dump()
        try:
            command.apply(project)
        except UserError:
            assert project.dump() == before  # a refused command changes nothing
            continue
        assert command.name
        _effect_holds(command, project, before)
        applied.append(command)
        states.append(project.dump())
    end = project.dump()
    for command, state in zip(reversed(applied), reversed(states[1:])):
        assert project.dump() == state
        command.revert(project)
    assert project.dump() == start
    for command, state in zip(applied, states[1:]):  # redo: the very same stores again
        command.apply(project)
        assert project.dump() == state
    assert project.dump() == end
    for command in reversed(applied):
        command.revert(project)
    assert project.dump() == start
