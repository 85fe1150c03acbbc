"""`bench` figure of fine-tuning: seconds to fine-tune on 200 coded events with the token cache.

Owns: `measure_finetune`. May import training, media and core; the CLI layer may import every
layer.

What runs is the fine-tune a coder starts from the window or with `python main.py finetune`:
`training.finetune.run_finetune` on a snapshot of coded events, with its defaults (heads only,
the backbone frozen, its tokens kept by `training.token_cache.TokenCache`, prepared pairs by
the pair cache), one held-out subject (one training stage: parent scored, heads trained, the
new checkpoint saved). It runs twice from the same parent with the same events and caches: the
first finds both caches empty (`cold_s`: every pair cut, its flow measured and every crop
through the backbone); the second finds every pair and every token on disk. The figure is the
second: a coder re-running a fine-tune after correcting labels, which is the loop the token
cache is for.

Events (`_snapshot`): `n_events` (onset, apex = onset + 6, offset = onset + 9) spans spread
over the synthetic long video (a real face with rendered micro-movements), across four
subjects round robin, each with one or two random AUs of the parent's vocabulary (labels do
not change the time). The snapshot is built directly (`finetune.TrainingSnapshot`), as
`finetune.snapshot_events` would copy it out of a project.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np

from microau_gui.cli.bench_report import figure

_SUBJECTS = ("01", "02", "03", "04")
_HOLDOUT = ("04",)  # one held-out subject: a single training stage


def _snapshot(video: Path, vocab: tuple[str, ...], n_events: int, seed: int):
    from microau_gui.core.aus import parse_au_string
    from microau_gui.core.types import Sample
    from microau_gui.media import open_media
    from microau_gui.training.finetune import TrainingSnapshot

    with open_media(video, cache_frames=0) as source:
        n_frames = source.n_frames
    stride = max(1, (n_frames - 10) // max(1, n_events))
    rng = np.random.default_rng(seed)
    samples = []
    for k in range(n_events):
        onset = (k * stride) % max(1, n_frames - 10)
        picked = rng.choice(len(vocab), size=int(rng.integers(1, 3)), replace=False)
        aus = parse_au_string("+".join(vocab[i] for i in sorted(picked))).codes
        samples.append(Sample(subject=_SUBJECTS[k % len(_SUBJECTS)], clip=video.stem, media_path=video,
                              onset=onset, apex=onset + 6, offset=onset + 9, aus=aus))
    return TrainingSnapshot(project_path=video.with_suffix(".maus"), samples=tuple(samples),
                            event_ids=tuple(range(1, n_events + 1)), version_names=())


def measure_finetune(checkpoint: Path, video: Path, n_events: int, epochs: int, work: Path) -> dict:
    """Seconds of `run_finetune` on `n_events` events with warm caches (see the module docstring).

    `work` holds the caches and the fine-tuned checkpoints; it is emptied first, so the first
    run is cold.
    """
    from microau_gui.model.card import read_card
    from microau_gui.training.finetune import FinetuneOptions, run_finetune

    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    card = read_card(checkpoint)
    snapshot = _snapshot(video, tuple(card.vocab), n_events, seed=0)
    options = FinetuneOptions(holdout_subjects=_HOLDOUT, epochs=epochs, pair_cache=work / "pairs",
                              token_cache=work / "tokens")
    runs = []
    for name in ("cold", "warm"):
        started = time.perf_counter()
        result = run_finetune(snapshot, checkpoint, work / f"bench-finetune-{name}", options)
        runs.append((time.perf_counter() - started, result))
    (cold_s, cold), (warm_s, warm) = runs
    return figure(warm_s, "s", n_events=warm.n_events, n_pairs=warm.n_pairs, epochs=epochs,
                  backbone=card.config.backbone, train_blocks=options.train_blocks,
                  protocol=warm.protocol, holdout_subjects=list(warm.holdout_subjects),
                  train_s=warm.train_seconds, cold_s=cold_s, cold_train_s=cold.train_seconds,
                  cold_images_encoded=cold.tokens_encoded, warm_images_encoded=warm.tokens_encoded,
                  warm_images_from_cache=warm.tokens_from_cache,
                  note="training.finetune.run_finetune, second run: pairs and backbone tokens from "
                       "the caches; cold_s is the first run")
