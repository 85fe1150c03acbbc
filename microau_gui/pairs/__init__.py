"""Pair preparation, shared by training and inference (the face/media/store floor).

Owns: cutting an onset/apex frame pair into aligned crops, measuring their optical flow, the
labels of a pair over a vocabulary, and the on-disk cache of prepared pairs (`samples`). May
import face, media and core (numpy, OpenCV); never the model, the pipelines above it, or Qt.

Public API (import the module directly; this package imports nothing eagerly):
- `samples`: `PrepSettings(size, flow_size)`, `prepare_samples(samples, settings, cache_dir=...,
  progress=..., should_cancel=...) -> PreparedSet` (aligned onset/apex crops, flow, landmarks;
  cached on disk), `prepare_pair(reference_rgb, target_rgb, xy_img, settings)` (the same for one
  frame pair, for inference), `checkpoint_prep_settings(card)`, `au_labels`, `labels_matrix`,
  `sample_masks`, `training_data_hash`.
"""
