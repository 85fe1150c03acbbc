"""Face geometry: MediaPipe landmarks, similarity alignment, AU regions, pair crops and motion.

Owns: landmark detection (landmarks; in a child process for long analyses, landmark_process),
the similarity face crop (align), AU region polygons and
masks (regions), onset/apex pair crops (pair), optical flow with head motion removed (motion) and
overlay drawing (draw).
May import core only (plus numpy, OpenCV, MediaPipe). No torch, no Qt.
"""
