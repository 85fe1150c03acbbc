"""Face geometry: MediaPipe landmarks, similarity alignment, AU regions, pair crops and motion.

May import core only (plus numpy, OpenCV, MediaPipe). No torch, no Qt.
"""
