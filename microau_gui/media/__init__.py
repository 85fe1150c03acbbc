"""Frame sources: video files and image-sequence folders with frame-exact random access.

May import core only (plus numpy, PyAV, OpenCV). No torch, no Qt.
"""
