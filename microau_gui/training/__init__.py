"""Training, evaluation, baselines and fine-tuning of Micro-AU CLIP. No Qt.

May import model, face, media, store and core.
"""
