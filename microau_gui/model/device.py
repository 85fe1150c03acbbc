"""Device choice and mixed precision for Micro-AU CLIP.

Owns: `pick_device` ("auto" | "cpu" | "cuda" -> torch.device) and `autocast_for` (bf16 autocast
on CUDA, nothing on CPU). May import core and torch.

All of this is our specification (the paper says nothing about devices).

Why no autocast on CPU: CPU bf16 speed depends on the instruction set. On the development
machine (AMD EPYC, AVX2, no AVX512-BF16 / AMX) a ViT-B/16 forward was several times *slower* in
bf16 than in fp32, whether by autocast or by converting weights and inputs; CPUs with native bf16
units behave the other way. So nothing here switches CPU precision: the network is dtype-agnostic
(`model.to(torch.bfloat16)` plus bf16 inputs works) and a benchmark decides per machine.
"""

from __future__ import annotations

import contextlib

import torch

from microau_gui.core.errors import UserError

DEVICE_CHOICES: tuple[str, ...] = ("auto", "cpu", "cuda")


def pick_device(preference: str = "auto") -> torch.device:
    """CUDA when present (for "auto") or requested; CPU otherwise.

    Raises UserError when "cuda" is requested but no CUDA device is usable, or for an unknown
    name. "cuda:1" style indices are accepted.
    """
    choice = (preference or "auto").strip().lower()
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise UserError("--device cuda was asked for but no CUDA device is available; use --device cpu")
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(
                f"{choice} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s)"
            )
        return device
    raise UserError(f"unknown device {preference!r}; use one of {', '.join(DEVICE_CHOICES)}")


def autocast_for(device: torch.device | str):
    """A context manager: bf16 autocast on CUDA (when the GPU supports bf16), a no-op elsewhere."""
    device = torch.device(device)
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
