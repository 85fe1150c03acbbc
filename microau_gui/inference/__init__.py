"""Prediction: frame pairs to FramePrediction, streaming analysis, device and speed modes. No Qt.

Owns: the `Predictor`, reference-frame policies, checkpoint discovery, streamed analysis,
corpus analysis, suggestions, speed modes and GPU checks.
May import training, spotting, model, face, media, store and core.

Modules (import them directly; this package imports nothing eagerly, so torch loads only when a
Predictor is made):
- `predictor`: `Predictor` (the session/CLI contract), `FramePair`.
- `speed`: the speed modes (fp32, bf16, int8), the parity check and the start-up choice.
- `gpu`: pinned-memory uploads, bf16 and batched throughput on CUDA.
- `suggest`: what the coder should review next (active learning).
- `reference`: `ReferencePolicy`, `reference_frame`, `parse_reference`.
- `checkpoints`: `default_checkpoint`, `list_checkpoints`, `resolve_checkpoint`.
- `pipeline`: `AnalysisPipeline`, the one steppable analysis (decoding, static landmarks, the
  reference policy, batching, cache writes) that the CLI, the bench and the GUI worker drive;
  `analyze_source` steps it to the end; `FrameLandmarks` for the frame on screen.
- `analysis`: what an analysis asks for and where rows go: `AnalysisOptions`, `plan_frames`,
  `ProjectCache`, `open_project_cache`, `CsvSink`.
- `analysis_job`: `AnalysisJob` / `open_analysis`, one whole analysis from plain values (the
  `analyze` command and the bench).
- `corpus`: `analyze-corpus` without an engine: inputs, chunk bounds, one chunk's analysis, the
  run folder and manifest, the project's one writer.
- `corpus_ray`: the Ray engine (the `cluster` extra): worker actors and the driver loop.
"""
