"""Micro-expression spotting in long videos, MEGC evaluation and inter-coder agreement. No Qt.

Owns: motion signals, candidate spotting, interval matching (MEGC), inter-coder agreement and
the candidate / event files.
May import face, media, store and core.

Public API:
- `spot_media(path, config=SpotConfig(), progress=None, should_cancel=None, fps=None)
  -> SpotResult` (spotter.py): one streaming pass; `SpotResult.candidates` is a tuple of
  `Candidate(onset, apex, offset, kind, score, regions)` sorted by onset (rank a review queue by
  `score`). `progress(done, total)`; `should_cancel()` -> True raises `core.progress.Cancelled`.
  `find_candidates(signals, config)` re-runs the peak finding on stored `MotionSignals`
  (signals.py) without touching the video.
- `gate_ranges(candidates, n_frames, fps, margin_s=0.2, macro_apex_only=True) -> [(start, stop)]`
  (intervals.py): the half-open frame ranges `analyze --gate spot` analyses.
- `evaluate_spotting(pred, truth, min_iou=0.5) -> SpotEvaluation` and `match_intervals`
  (intervals.py): the MEGC protocol.
- `compare_coders(events_a, events_b, n_frames=None) -> Agreement` (agreement.py): per-AU frame
  kappa, event F1, timing errors; `write_agreement_csv`.
- Files (files.py): `write_candidates_csv`, `read_candidates_csv`, `read_event_table`,
  `match_video_keys`, `rename_videos`; dataset sheets through their importers (sheets.py).
"""
