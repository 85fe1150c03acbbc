"""Prediction: frame pairs to FramePrediction, streaming analysis, device and speed modes. No Qt.

Owns: the `Predictor`, reference-frame policies, checkpoint discovery, streamed analysis,
suggestions, speed modes and GPU checks.
May import training, spotting, model, face, media, store and core.

Modules (import them directly; this package imports nothing eagerly, so torch loads only when a
Predictor is made):
- `predictor`: `Predictor` (the session/CLI contract), `FramePair`, `SPEED_MODES`.
- `reference`: `ReferencePolicy`, `reference_frame`, `parse_reference`.
- `checkpoints`: `default_checkpoint`, `list_checkpoints`, `resolve_checkpoint`, `is_demo_card`.
- `analysis`: `analyze_source` (streamed batch analysis), `AnalysisOptions`, `CsvSink`,
  `open_project_cache`.
"""
