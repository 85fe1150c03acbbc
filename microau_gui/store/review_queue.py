"""The spotted candidates kept per video, with the coder's triage marks: a real table.

Owns: `CandidateRow`, `ReviewCandidates` (`project.review`). May import only the standard library,
`core` and the store's own modules.

A video's candidates are written as a whole after each spotting pass and each mark (the queue is
small: tens of rows), in rank order (`rank` 0 = highest score). `rejected` and
`accepted_event_id` are the coder's marks; the accepted event id is not a foreign key on
purpose: undoing an accept deletes the event and redoing it brings the same id back, and the
queue counts an item as accepted only while that event exists. Not undoable state (the marks
are the coder's triage; accepted events are on the undo stack).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from microau_gui.store.db import Database

_COLUMNS = "onset_idx, apex_idx, offset_idx, score, kind, detail, rejected, accepted_event_id"


@dataclass(frozen=True)
class CandidateRow:
    """One ranked candidate of a video and its mark."""

    onset_idx: int
    apex_idx: int
    offset_idx: int  # inclusive
    score: float  # rank key, higher first (spotting: apex z in noise units)
    kind: str  # "micro" or "macro"
    detail: str = ""  # one line: the regions that moved
    rejected: bool = False
    accepted_event_id: int | None = None  # the event the coder accepted it as


class ReviewCandidates:
    def __init__(self, db: Database):
        self._db = db

    def rows(self, video_id: int) -> list[CandidateRow]:
        """The video's candidates in rank order (empty when it was never spotted)."""
        found = self._db.conn().execute(
            f"SELECT {_COLUMNS} FROM review_candidates WHERE video_id = ? ORDER BY rank",
            (video_id,)).fetchall()
        return [CandidateRow(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7]) for r in found]

    def video_ids(self) -> list[int]:
        """Videos with at least one stored candidate."""
        return [r[0] for r in self._db.conn().execute(
            "SELECT DISTINCT video_id FROM review_candidates ORDER BY video_id")]

    def replace(self, video_id: int, rows: Sequence[CandidateRow]) -> None:
        """Store `rows` (in rank order) as the video's candidates, in one transaction."""
        with self._db.write():
            conn = self._db.conn()
            conn.execute("DELETE FROM review_candidates WHERE video_id = ?", (video_id,))
            conn.executemany(
                f"INSERT INTO review_candidates (video_id, rank, {_COLUMNS}) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(video_id, rank, r.onset_idx, r.apex_idx, r.offset_idx, float(r.score), r.kind,
                  r.detail, int(r.rejected), r.accepted_event_id)
                 for rank, r in enumerate(rows)])
