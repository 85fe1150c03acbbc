"""MicroAU Studio: micro-expression action-unit review, annotation and Micro-AU CLIP fine-tuning.

Layers (imports only go downwards; import-linter checks it, see pyproject.toml):

    cli / gui -> session -> inference -> training | spotting | synth -> model
              -> face | media | store -> core
"""

__version__ = "0.1.0"
