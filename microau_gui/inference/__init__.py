"""Prediction: frame pairs to FramePrediction, streaming analysis, device and speed modes. No Qt.

Owns: the `Predictor`, reference-frame policies, checkpoint discovery, streamed analysis,
suggestions, speed modes and GPU checks.
May import training, spotting, model, face, media, store and core.

Modules (import them directly; this package imports nothing eagerly, so torch loads only when a
Predictor is made):
- `predictor`: `Predictor` (the session/CLI contract), `FramePair`.
- `speed`: the speed modes (fp32, bf16, int8), the parity check and the start-up choice.
- `gpu`: pinned-memory uploads and the decode/landmark producer for CUDA.
- `suggest`: what the coder should review next (active learning).
- `reference`: `ReferencePolicy`, `reference_frame`, `parse_reference`.
- `checkpoints`: `default_checkpoint`, `list_checkpoints`, `resolve_checkpoint`.
- `analysis`: `analyze_source` (streamed batch analysis), `AnalysisOptions`, `CsvSink`,
  `open_project_cache`.
"""
