"""Prediction: frame pairs to FramePrediction, streaming analysis, device and speed modes. No Qt.

May import training, spotting, model, face, media, store and core.
"""
