"""`bench` figures of the network: ms per frame for each backbone, batch size and speed mode.

Owns: `bench_checkpoint`, `measure_model`. May import model, inference (speed modes) and core;
the CLI layer may import every layer.

Networks have random weights (nothing is downloaded): the tiny backbone and ViT-B-16, with random
prompt embeddings (non-zero, so the probabilities spread like a trained model's do instead of all
being 0.5), saved as checkpoint folders that the end-to-end `analyze` figures load. Input mode
"flow", the DESIGN.md default (one image per pair through the backbone). The forward timed is
the whole network (backbone + PTA + GDA + detection head) on batches from
`inference.speed.sample_batch` (a real face photo).

Every batch size runs the start-up choice itself, `speed.choose_fastest_mode`: each faster mode
raced against fp32 at each CPU thread count of `speed.thread_candidates` (1 and all cores on a
2-core machine; only the count `bench --threads N` fixes, when given), repeats interleaved. A mode's figure is its median at its best thread count
(`threads`; the others in `forward_ms_by_threads`); the "auto" figure is the (mode, threads)
that choice picked. A mode whose first two runs are both more than `GIVE_UP_FACTOR` times
slower than fp32 is not raced (its figure is the faster of those two runs) and not run again at
batch 16 (bf16 on CPUs without bf16 units would take minutes there).

Every measured figure also carries the network's FLOPs per frame (counted) and its achieved
GFLOP/s and fraction of the run's best-dtype GEMM roofline (`bench_roofline.with_roofline`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from microau_gui.cli.bench_report import MODEL_MODES, failed, figure, skipped
from microau_gui.cli.bench_roofline import Roofline, model_gflop_per_frame, with_roofline

GIVE_UP_FACTOR = 2.0


def bench_checkpoint(folder: Path, backbone: str, seed: int = 0) -> Path:
    """A random-weight Micro-AU CLIP ("flow" input) saved as a checkpoint folder; reused if there."""
    from microau_gui.model.card import CARD_NAME
    from microau_gui.model.checkpoint import save_checkpoint
    from microau_gui.model.config import MicroAUConfig
    from microau_gui.model.network import MicroAUCLIP
    from microau_gui.pairs.samples import PREP_VERSION

    if (folder / CARD_NAME).is_file():
        return folder
    torch.manual_seed(seed)
    if backbone == "tiny":
        config = MicroAUConfig.tiny(input_mode="flow")
    else:
        config = MicroAUConfig(backbone=backbone, pretrained="none", input_mode="flow")
    model = MicroAUCLIP(config, load_pretrained=False, text_tower=False).eval()
    # Random prompt embeddings stand in for a random text tower's (encoding the prompts with it
    # costs seconds and means no more); zeros would make every probability exactly 0.5.
    generator = torch.Generator().manual_seed(seed)
    model.text_pos = torch.randn(model.text_pos.shape, generator=generator)  # (n_au, D)
    model.text_neg = torch.randn(model.text_neg.shape, generator=generator)  # (n_au, D)
    prep = {"size": model.image_size, "flow_size": max(model.image_size, 224), "version": PREP_VERSION}
    save_checkpoint(model, folder, training_settings={"prep": prep},
                    notes="random weights, written by `python main.py bench`; predictions mean nothing")
    return folder


def measure_model(checkpoint: Path, key: str, batches: tuple[int, ...], all_batches: tuple[int, ...],
                  repeats: int, tolerance: float,
                  thread_counts: tuple[int, ...] | None = None,
                  roofline: Roofline | None = None) -> dict[str, dict]:
    """Figures `model_{key}_b{B}_{mode}_ms` and `model_{key}_b{B}_auto_ms` (ms per frame), each
    with its roofline fields.

    Batch sizes in `all_batches` but not in `batches` are reported as skipped (quick profile).
    `thread_counts`: CPU thread counts to race (default `speed.thread_candidates()`).
    """
    from microau_gui.inference.speed import (choose_fastest_mode, sample_batch, supported_modes,
                                             thread_candidates)
    from microau_gui.model.checkpoint import load_checkpoint

    model, card = load_checkpoint(checkpoint, device="cpu")
    model = model.float().eval()
    gflop = model_gflop_per_frame(model, sample_batch(model, 1), 1)
    # The tiny model keeps its absolute target; ViT-B-16's is a roofline ratio (`roofline_ratio`).
    target = "model_tiny_ms" if key == "tiny" else None
    figures: dict[str, dict] = {}
    too_slow: dict[str, str] = {}  # mode -> why it is not run at larger batches
    supported = supported_modes("cpu")
    common = {"backbone": card.config.backbone, "input_mode": card.input_mode, "weights": "random"}
    original_threads = torch.get_num_threads()
    for batch_size in all_batches:
        names = {mode: f"model_{key}_b{batch_size}_{mode}_ms" for mode in (*MODEL_MODES, "auto")}
        rule = target
        if batch_size not in batches:
            for name in names.values():
                figures[name] = skipped("ms/frame", "quick profile: not measured at this batch size",
                                        rule, batch=batch_size)
            continue
        modes = tuple(m for m in MODEL_MODES if m in supported and m not in too_slow)
        try:
            # No memory budget: the bench process holds every earlier section's data (1.7 GB in
            # the smoke profile), so the analysis's 2 GB budget would veto the other runtime's
            # mode for this process's size, not for the mode's. The gated run, a child process
            # like a real analysis, keeps the budget.
            choice = choose_fastest_mode(model, sample_batch(model, batch_size), tolerance, modes=modes,
                                         repeats=repeats, threads=thread_counts or thread_candidates(),
                                         give_up_factor=GIVE_UP_FACTOR, probe_bf16=False,
                                         memory_budget_mb=None)
        finally:
            torch.set_num_threads(original_threads)
        for mode in MODEL_MODES:
            if mode not in supported:
                figures[names[mode]] = skipped("ms/frame", f"{mode} does not run here (this CPU, or "
                                               "its optional runtime is not installed)", rule,
                                               batch=batch_size)
            elif mode in too_slow:
                figures[names[mode]] = skipped("ms/frame", too_slow[mode], rule, batch=batch_size)
            elif mode not in choice.timings_ms:
                figures[names[mode]] = failed("ms/frame", choice.rejected.get(mode, "not measured"), rule)
            else:
                per_threads = choice.timings_by_threads[mode]
                threads = min(per_threads, key=per_threads.get)
                ms = choice.timings_ms[mode]
                once = mode in choice.timed_once
                figures[names[mode]] = figure(
                    ms / batch_size, "ms/frame", rule, batch=batch_size, forward_ms=ms,
                    prob_diff=choice.diffs[mode], parity_ok=choice.diffs[mode] <= tolerance,
                    relative_to_fp32=choice.relative.get(mode), threads=threads,
                    forward_ms_by_threads={str(n): v for n, v in per_threads.items()},
                    repeats=2 if once else repeats, **common,
                    **({"note": f"not raced: more than {GIVE_UP_FACTOR:g}x slower than fp32 twice"}
                       if once else {}))
                if once:
                    too_slow[mode] = (f"at batch {batch_size} a forward took {ms:.0f} ms, more than "
                                      f"{GIVE_UP_FACTOR:g}x fp32; not run again at larger batches")
        best = choice.mode
        figures[names["auto"]] = figure(
            choice.timings_ms[best] / batch_size, "ms/frame", rule, batch=batch_size, mode=best,
            threads=choice.threads, prob_diff=choice.diffs[best], tolerance=tolerance,
            rejected=choice.rejected, chosen_by="inference.speed.choose_fastest_mode", **common)
    return {name: with_roofline(entry, gflop, roofline) for name, entry in figures.items()}


def roofline_ratio(auto: dict, batch: int) -> dict:
    """`model_vitb16_b{batch}_roofline_fraction`: the best mode's fraction of the roofline."""
    rule = "vit_b1_roofline_fraction" if batch == 1 else "vit_roofline_fraction"
    if auto.get("value") is None:
        return skipped("fraction of roofline", auto.get("skipped") or auto.get("error") or "not measured",
                       rule, batch=batch)
    if auto.get("roofline_fraction") is None:
        return skipped("fraction of roofline", auto.get("roofline_why", "no roofline measured"), rule,
                       batch=batch)
    return figure(auto["roofline_fraction"], "fraction of roofline", rule, batch=batch,
                  mode=auto.get("mode"), ms_per_frame=auto["value"], achieved_gflops=auto["achieved_gflops"],
                  gflop_per_frame=auto["gflop_per_frame"], roofline_dtype=auto.get("roofline_dtype"))
