"""Training, evaluation and baselines of Micro-AU CLIP. No Qt.

Owns: augmentation, the trainer, protocols, metrics, baselines, emotion recognition, and the
runs behind `train`, `eval` and `finetune`. Pair preparation lives in `microau_gui.pairs`.
May import model, pairs, face, media, store and core.

Public API (import the modules directly; this package imports nothing eagerly):
- `augment`: `flip_pair`, `flip_landmarks`, `swap_sides`, `jitter_pair`.
- `trainer`: `TrainSettings`, `train_model(config_or_model, pairs, settings, device=...,
  progress=..., should_cancel=...) -> TrainResult`, `predict_pairs(model, pairs) -> Predictions`.
- `protocols`: `loso_folds`, `subject_folds`, `holdout_fold`, `split`.
- `metrics`: `au_report(...) -> AUReport` (`to_json()` is the DESIGN.md report),
  `format_au_table`, `emotion_scores`.
- `baselines`: `FlowSVM`, `AllPositive`, `region_features`.
- `emotion`: `OBJECTIVE_CLASSES`, `class_log_probs`, `recognise`, `reference_labels`.
- `experiment`: `cross_validate(method, pairs, folds, ...) -> MethodRun`, `score_predictions`.
- `datasets`: `parse_dataset_spec("KIND:SHEET:ROOT")`, `load_dataset`, `select_subjects`.
- `distributed`: torchrun/DDP pieces (`init_from_env`, `world`, `FoldShardSampler`,
  `sharded_tokens`, `row_keyed_dropout`, `DistributedLoss`) that `trainer` uses in a process group.
- `runs`: what `train` / `eval` run: `model_config`, `prepare_data`, `train_and_save`,
  `train_all_and_save`, `evaluate_checkpoint`.
"""
