"""Micro-AU CLIP as nn.Modules and dataclass configs, plus checkpoints.

Owns: the network, its config, losses, backbone and text towers, checkpoints and device choice.
May import core, torch and open_clip. Never imports face, media, store, pipelines or Qt.

Modules (import them directly; this package imports nothing eagerly so `config` stays cheap):
- `config`: `MicroAUConfig` (every hyper-parameter, JSON), `INPUT_MODES`, the "tiny" backbone.
- `backbone`: open_clip creation, pretrained weights (tag or local file), projected patch tokens.
- `text`: the frozen text tower and the AU prompts behind the cached text embeddings.
- `pta`, `gda`, `attention`: Patch Token Attention and Global Dependency Attention.
- `losses`: BCE with positive-class weights, MiAUCL, GDLoss and its co-occurrence prior.
- `network`: `MicroAUCLIP`, `PairBatch` (input), `PairTokens`, `MicroAUOutput` (output).
- `checkpoint`: safetensors + JSON model card, atomic save, validated load.
- `device`: `pick_device`, `autocast_for`.
"""
