"""The session's undo stack (QUndoStack wrapper over store commands) under random use.

Single edits, multi-command steps (moving a whole event is up to three boundary moves in one
step), undo, redo, and new edits after an undo (which drop the redo branch): after every
operation the store must equal the state the stack's position says, and undoing to the bottom
must give the very store the session opened.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_session_fixtures import session  # noqa: F401  (fixture)
from test_store_fixtures import aus, small_project

from microau_gui.store.commands import AddEvent, AddNote, DeleteEvent, SetEmotion, SetEventAUs

STEPS = st.lists(st.tuples(
    st.sampled_from(["move", "move", "add", "aus", "emotion", "delete", "note", "both",
                     "undo", "undo", "redo"]),
    st.integers(0, 1000), st.integers(0, 11), st.integers(0, 11), st.integers(0, 11),
), min_size=5, max_size=25)


def _step(sess, project, op) -> bool | None:
    """Run one user step through the session; None when nothing applies."""
    kind, pick, a, b, c = op
    events = project.events()
    video = project.videos()[pick % 2]
    onset, apex, offset = sorted((a, b, c))
    if kind == "add":
        return sess.push([AddEvent(video.id, onset, apex, offset, aus("12"), coder="hyp")])
    if kind == "note":
        return sess.push([AddNote(f"n{a}", video_id=video.id, frame_idx=a)])
    if not events:
        return None
    event = events[pick % len(events)]
    if kind == "move":
        n_frames = project.video(event.video_id).n_frames
        if offset >= n_frames or (onset, apex, offset) == (event.onset, event.apex, event.offset):
            return None
        ok = sess.move_event(event.id, onset, apex, offset)
        moved = project.event(event.id)
        assert ok and (moved.onset, moved.apex, moved.offset) == (onset, apex, offset)
        return ok
    if kind == "aus":
        return sess.push([SetEventAUs(event.id, aus(("4+7", "12", "L10B")[a % 3]))])
    if kind == "emotion":
        return sess.push([SetEmotion(event.id, ("joy", "fear", None)[a % 3])])
    if kind == "both":  # two commands, one undo step
        return sess.push([SetEmotion(event.id, f"x{a}"), SetEventAUs(event.id, aus("1+2"))],
                         "edit twice")
    return sess.push([DeleteEvent(event.id)])


def test_session_undo_stack_follows_random_use(session, tmp_path, astronaut_path):  # noqa: F811
    project = small_project(tmp_path, astronaut_path)
    session.open_project(project)
    stack = session.undo_stack
    refused: list[str] = []
    session.failed.connect(refused.append)

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    @given(steps=STEPS)
    def run(steps):
        start = project.dump()
        states = [start]  # states[k]: the store at stack index k
        try:
            _walk(steps, states)
        finally:  # leave the next example the same store and an empty stack
            while stack.canUndo():
                stack.undo()
            stack.clear()
        assert project.dump() == start

    def _walk(steps, states):
        for op in steps:
            if op[0] == "undo":
                if stack.canUndo():
                    stack.undo()
            elif op[0] == "redo":
                if stack.canRedo():
                    stack.redo()
            else:
                before, index = project.dump(), stack.index()
                done = _step(session, project, op)
                if not done:
                    assert project.dump() == before and stack.index() == index
                    continue
                assert project.dump() != before, f"{op} changed nothing"
                assert stack.index() == index + 1 and not stack.canRedo()
                del states[index + 1:]  # a new step after an undo drops the redo branch
                states.append(project.dump())
            assert stack.index() < len(states), (op, stack.index(), len(states), refused)
            assert project.dump() == states[stack.index()], (op, refused)

    run()
    assert not any("Undo:" in r or "Redo:" in r for r in refused), refused
