"""Micro-AU CLIP as nn.Modules and dataclass configs, plus checkpoints.

May import core, torch and open_clip. Never imports face, media, store, pipelines or Qt.
"""
