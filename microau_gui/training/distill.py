"""Distillation: a small student learns what the full model (the teacher) says, without labels.

Owns: `DistillSettings`, `DistillSource`, `DistillResult`, `frame_pairs`, `clip_sources`,
`video_sources`, `distill`, `distill_report`, `init_from_teacher`, `student_config`,
`DISTILL_TARGETS`, `INIT_DEFAULTS`. May import model, pairs, media,
face, core and training's own modules (torch, numpy); no Qt, no synth and no inference (their
peers: the caller generates synthetic clips and passes the sliding reference's lag, which
`inference.reference` owns).

Why (DESIGN.md section 5, "Teacher and student"): the full Micro-AU CLIP model is too slow to
draw a trace of every frame of a long video on a laptop CPU; a tiny student draws the dense
traces and the teacher runs where a coder looks (gated frames, event apexes, the paused frame).

What the student learns (our specification):
- Frames: pairs cut exactly as analysis cuts them, a target frame and its sliding reference
  `lag` frames earlier (`frame_pairs`), from the user's own unlabelled videos and from clips of
  the synthetic generator (there, the coded onset -> apex pair is added to each clip's sliding
  pairs, so every clip shows the teacher one full expression). No label is read.
- Targets: the teacher's per-AU probabilities (soft targets: BCE of the student's logits against
  them) and its PTA maps (KL(teacher map || student map) per AU, weighted by `pta_weight`). The
  maps are distributions over the AU's region patches; a teacher on another patch grid is
  resampled to the student's grid by area and renormalised.
- Student: by default the tiny backbone (`model.config.TINY_BACKBONE`, 0.3 GFLOP a frame
  against ViT-B-16's 34), or the still cheaper `STUDENT_BACKBONE` ("tiny-student": 14 px
  patches, 64 tokens, about a third of tiny's time per frame), with the teacher's vocabulary,
  input mode and text side, trained whole, its own crop size (pairs are prepared at each
  model's size). Its dependency prior is the teacher's. It starts from the teacher's weights
  where the architectures allow (`init_from_teacher`: same blocks and heads, patch embedding
  and position grid resampled; nothing is shared with a ViT-B-16 teacher), because a student
  trained from random weights on a few hundred unlabelled pairs disagreed with the teacher on
  whole AUs. Measured with the bundled tiny teacher, on the 40 onset -> apex pairs of held-out
  subject 03 (mean / lowest per-AU F1 against the teacher): tiny-student from random weights
  0.71 / 0.17, from the teacher's 0.81 / 0.29; tiny from the teacher's 0.93 / 0.80 (all on
  133 pairs of subjects 01-02). With the face-only student flow (below) and 40 clips a subject,
  on 120 held-out pairs: tiny 0.97 / 0.90, tiny-student 0.92 / 0.78. `init="random"` keeps the
  old start.
- The student's own pairs measure their flow by `flow_method`, "farneback-fast" by default
  (issue #18: dense traces need a cheaper flow; `face.motion` has the measurements: one
  Farneback iteration per level costs under half of four and correlates 0.99 with it, where
  DIS, ten times cheaper, correlates 0.6 and cost the student whole AUs), at the teacher's flow
  size (`flow_size` another; at the model's 112 px crop the agreement fell from 0.97 / 0.86 to
  0.93 / 0.84, 40-clip students before the face-only flow). Its motion outside the face's
  landmark hull is set to 0 (`face.motion.FACE_ONLY_FLOW_METHODS`). The teacher labels pairs
  cut its own way (its card's method), so the student learns the teacher's verdict from the
  cheaper measurement; the agreement below is measured so too.
- No flip or colour jitter: the teacher's maps are not mirror-symmetric and jitter would need
  the teacher to label every jittered copy.
- Agreement: the sources (videos / clips) are split, `holdout_fraction` of them (at least one
  when there are two or more) are never trained on, and the student's per-AU F1 against the
  teacher's thresholded labels on them goes into the student's card (`metrics
  ["teacher_agreement"]`). The card's `teacher` field names the teacher (name@version).
- `distill_report`: quality on held-out synthetic subjects (subjects the student never saw):
  the student's per-AU F1 against the teacher's thresholded labels, and the student's and the
  teacher's mean F1 against the ground truth, beside the targets (`DISTILL_TARGETS`).
- Seeded and deterministic like `training.trainer` (same seed, data, machine, threads -> same
  student); progress after every step, cancellation between steps (`core.progress.Cancelled`);
  the output folder appears whole or not at all (`core.files.atomic_dir`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_dir
from microau_gui.core.progress import check_cancel
from microau_gui.core.types import DECISION_THRESHOLD, Sample
from microau_gui.face.motion import FLOW_METHODS
from microau_gui.model.config import SCRATCH_BACKBONES, TINY_BACKBONE, MicroAUConfig
from microau_gui.pairs.samples import (PairSample, PrepSettings, checkpoint_prep_settings,
                                       labels_matrix, prepare_samples, training_data_hash)
from microau_gui.training.metrics import AUReport, au_report
from microau_gui.training.trainer import (TrainSettings, _cosine_with_warmup, _PairArrays, _param_groups,
                                          build_model, deterministic, predict_pairs)

# The targets: student per-AU F1 >= 0.90 against the teacher's labels (every AU the
# teacher fires), and a mean F1 against ground truth at most 0.03 below the teacher's.
DISTILL_TARGETS = {"per_au_f1_vs_teacher": 0.90, "max_mean_f1_gap": 0.03}
PTA_EPS = 1e-6  # floor inside the PTA KL's logarithms (maps are 0 outside an AU's region)
# init -> (epochs, peak learning rate) when not given. A student that starts as the teacher only
# adapts to its cheaper flow: a few gentle epochs (measured on held-out subject 03, 40 pairs:
# 3 epochs at 2e-4 gave per-AU agreement 0.80-1.00, mean 0.93; 10 at 2e-3 pulled AU5 to 0.60).
# One from random weights learns everything: the longer, hotter schedule.
INIT_DEFAULTS: dict[str, tuple[int, float]] = {"teacher": (5, 2e-4), "random": (30, 2e-3)}

Stage = Callable[[str, int, int], None]  # (what, done, total): distillation progress


@dataclass(frozen=True)
class DistillSettings:
    """How a student is distilled. Saved in the student's card."""

    epochs: int | None = None  # passes over the training pairs; None = by `init` (INIT_DEFAULTS)
    batch_size: int = 16  # pairs per optimiser step
    lr: float | None = None  # peak learning rate (the whole network trains); None = by `init`
    weight_decay: float = 0.05  # AdamW decoupled weight decay on weight matrices
    warmup_fraction: float = 0.1  # share of all steps spent warming the learning rate up
    pta_weight: float = 1.0  # weight of the PTA map KL beside the probability BCE
    holdout_fraction: float = 0.2  # share of sources kept out of training to measure agreement
    seed: int = 0  # student init, source split, shuffling
    threads: int | None = None  # torch CPU threads while training; None = leave as is
    backbone: str = TINY_BACKBONE  # one of model.config.SCRATCH_BACKBONES
    init: str = "teacher"  # "teacher": start from the teacher's weights (`init_from_teacher`); "random"
    flow_method: str = "farneback-fast"  # how the student's pairs measure flow (face.motion.FLOW_METHODS)
    flow_size: int | None = None  # side of the crop the student's flow is measured on; None = the teacher's

    def __post_init__(self) -> None:
        if self.init not in INIT_DEFAULTS:
            raise UserError(f"student initialisation {self.init!r}: use teacher or random")
        epochs, lr = INIT_DEFAULTS[self.init]
        if self.epochs is None:
            object.__setattr__(self, "epochs", epochs)
        if self.lr is None:
            object.__setattr__(self, "lr", lr)
        if self.epochs < 1:
            raise UserError(f"--epochs {self.epochs}: distil for at least 1 epoch")
        if self.batch_size < 1:
            raise UserError(f"batch size {self.batch_size}: use at least 1")
        if not self.lr > 0:
            raise UserError(f"learning rate {self.lr}: use a positive value")
        if self.pta_weight < 0:
            raise UserError(f"PTA weight {self.pta_weight}: use 0 or more")
        if not 0 <= self.holdout_fraction < 1:
            raise UserError(f"held-out share {self.holdout_fraction}: use 0 to below 1")
        if self.backbone not in SCRATCH_BACKBONES:
            raise UserError(f"student backbone {self.backbone!r}: use one of {', '.join(SCRATCH_BACKBONES)}")
        if self.flow_method not in FLOW_METHODS:
            raise UserError(f"flow method {self.flow_method!r}: use one of {', '.join(FLOW_METHODS)}")
        if self.flow_size is not None and not 16 <= self.flow_size <= 1024:
            raise UserError(f"--flow-size {self.flow_size}: use 16 to 1024 px")

    def train_settings(self) -> TrainSettings:
        """The trainer's settings the shared optimiser helpers read (no augmentation)."""
        return TrainSettings(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                             backbone_lr_scale=1.0, weight_decay=self.weight_decay,
                             warmup_fraction=self.warmup_fraction, flip=False, colour_jitter=0.0,
                             seed=self.seed, threads=self.threads)


@dataclass(frozen=True)
class DistillSource:
    """One video or clip the student learns from: its frame pairs as label-free samples."""

    name: str  # what the source is called in reports (video file name, "synthetic sub01/EP02_01")
    subject: str  # who is filmed, when known (synthetic subject id), else the video's name
    samples: tuple[Sample, ...]  # onset = reference frame, apex = target frame, no AUs


@dataclass(frozen=True, eq=False)
class DistillResult:
    card: object  # the student's ModelCard
    agreement: AUReport | None  # student vs teacher on the held-out sources (None: none held out)
    n_train: int  # training pairs
    n_holdout: int  # held-out pairs
    seconds: float
    epoch_losses: tuple[float, ...] = field(default=())


def frame_pairs(media_path: Path, n_frames: int, lag: int, n_pairs: int, *, subject: str,
                clip: str) -> list[Sample]:
    """`n_pairs` targets spread evenly over a media file, each with its sliding reference `lag`
    frames earlier, as analysis pairs them (label-free samples)."""
    if n_frames <= lag or n_pairs < 1:
        return []
    targets = np.unique(np.linspace(lag, n_frames - 1, n_pairs).round().astype(int))
    return [Sample(subject=subject, clip=clip, media_path=Path(media_path), onset=int(t) - lag,
                   apex=int(t), offset=int(t)) for t in targets]


def video_sources(videos: Sequence[Path], lag_of: Callable[[float], int],
                  pairs_per_video: int) -> list[DistillSource]:
    """Sources of the user's videos (or image folders); `lag_of(fps)` is the sliding reference's
    lag in frames (`inference.reference.sliding_offset_frames`)."""
    from microau_gui.media import probe_media

    sources = []
    for video in videos:
        info = probe_media(video)
        lag = lag_of(info.fps)
        samples = frame_pairs(Path(video), info.n_frames, lag, pairs_per_video,
                              subject=Path(video).stem, clip=Path(video).name)
        if not samples:
            raise UserError(f"--videos {video}: {info.n_frames} frames is too short for a sliding "
                            f"reference {lag} frames back")
        sources.append(DistillSource(Path(video).name, Path(video).stem, tuple(samples)))
    return sources


def clip_sources(clips, root: Path, lag: int, pairs_per_clip: int,
                 subjects: Sequence[str] | None = None) -> list[DistillSource]:
    """Sources of synthetic clips (`synth.clips.ClipSpec`s written under `root`, read by
    attribute: this floor does not import synth): each clip's sliding pairs plus its coded
    onset -> apex pair, without its labels. subjects: keep only these subjects' clips."""
    sources = []
    for spec in clips:
        if subjects is not None and spec.subject not in subjects:
            continue
        coded = spec.sample(root)
        sliding = frame_pairs(coded.media_path, spec.n_frames, lag, pairs_per_clip,
                              subject=spec.subject, clip=spec.clip)
        label_free = Sample(subject=spec.subject, clip=spec.clip, media_path=coded.media_path,
                            onset=coded.onset, apex=coded.apex, offset=coded.apex)
        sources.append(DistillSource(f"synthetic sub{spec.subject}/{spec.clip}", spec.subject,
                                     (label_free, *sliding)))
    return sources


def _split(sources: Sequence[DistillSource], fraction: float, seed: int) -> tuple[list, list]:
    """(training, held-out) sources; held out: round(fraction * n), at least 1 when n >= 2."""
    n = len(sources)
    n_out = 0 if n < 2 or fraction <= 0 else min(n - 1, max(1, int(round(fraction * n))))
    order = np.random.default_rng(seed).permutation(n)
    held = set(order[:n_out].tolist())
    return ([s for i, s in enumerate(sources) if i not in held],
            [s for i, s in enumerate(sources) if i in held])


def _pair_key(sample: Sample) -> tuple:
    return (str(Path(sample.media_path)), int(sample.onset), int(sample.apex))


def _matched(teacher_pairs: Sequence[PairSample], student_pairs: Sequence[PairSample]):
    """The pairs both preparations kept, in one order: (teacher pairs, student pairs)."""
    by_key = {_pair_key(p.sample): p for p in student_pairs}
    kept = [(p, by_key[_pair_key(p.sample)]) for p in teacher_pairs if _pair_key(p.sample) in by_key]
    return [t for t, _ in kept], [s for _, s in kept]


def _prepare_both(samples: Sequence[Sample], teacher_prep: PrepSettings, student_prep: PrepSettings,
                  cache, stage: Stage | None, should_cancel):
    def progress(what):
        return None if stage is None else (lambda done, total: stage(what, done, total))

    teacher_set = prepare_samples(samples, teacher_prep, cache_dir=cache, progress=progress(
        "preparing pairs"), should_cancel=should_cancel)
    if student_prep == teacher_prep:
        return list(teacher_set.pairs), list(teacher_set.pairs)
    student_set = prepare_samples(samples, student_prep, cache_dir=cache, progress=progress(
        "preparing student pairs"), should_cancel=should_cancel)
    return _matched(teacher_set.pairs, student_set.pairs)


def maps_on_grid(maps: np.ndarray, grid: int) -> np.ndarray:
    """PTA maps `(N, n_au, P)` resampled to `grid * grid` patches (area), rows summing to 1."""
    n, n_au, p = maps.shape
    side = int(round(math.sqrt(p)))
    if side == grid:
        return maps.astype(np.float32)
    small = F.interpolate(torch.from_numpy(maps).float().reshape(n * n_au, 1, side, side),
                          size=(grid, grid), mode="area").reshape(n, n_au, grid * grid)
    return (small / small.sum(-1, keepdim=True).clamp_min(PTA_EPS)).numpy()


def pta_kl(student_maps: torch.Tensor, teacher_maps: torch.Tensor) -> torch.Tensor:
    """Mean over pairs and AUs of KL(teacher || student), maps `(B, n_au, P)`."""
    t = teacher_maps
    kl = (t * (torch.log(t + PTA_EPS) - torch.log(student_maps + PTA_EPS))).sum(-1)  # (B, n_au)
    return kl.mean()


def student_config(teacher_config: MicroAUConfig, backbone: str = TINY_BACKBONE) -> MicroAUConfig:
    """The student of a teacher: its vocabulary, input mode and text side (so the prompts it is
    scored against can be the teacher's), a from-scratch backbone trained whole."""
    return MicroAUConfig.tiny(backbone=backbone, input_mode=teacher_config.input_mode,
                              vocab=teacher_config.vocab, use_gda=teacher_config.use_gda,
                              text_side=teacher_config.text_side)


def init_from_teacher(student: torch.nn.Module, teacher: torch.nn.Module) -> dict[str, list[str]]:
    """Start the student from the teacher's weights where the two architectures allow it.

    Every tensor of equal name and shape is copied (blocks, heads, prompts, temperature). The
    two tensors a patch size changes are resampled: the patch embedding's kernels bilinearly to
    the student's patch side, scaled by the area ratio so a smooth image gives the same
    embedding (FlexiViT's observation), and the grid part of the position embedding bicubically
    to the student's grid. A teacher of another width or depth (a ViT-B-16) shares nothing, and
    the student starts from its random initialisation. Returns {"copied": [...], "resampled":
    [...]} names, for the card."""
    theirs = teacher.state_dict()
    mine = student.state_dict()
    copied, resampled = [], []
    for name, value in mine.items():
        source = theirs.get(name)
        if source is None:
            continue
        if source.shape == value.shape:
            mine[name] = source.detach().clone()
            copied.append(name)
        elif name.endswith("visual.conv1.weight") and source.shape[:2] == value.shape[:2]:
            side = value.shape[-1]
            kernels = F.interpolate(source.float(), size=(side, side), mode="bilinear", align_corners=False)
            mine[name] = (kernels * (source.shape[-1] / side) ** 2).to(value.dtype)
            resampled.append(name)
        elif name.endswith("visual.positional_embedding") and source.shape[1] == value.shape[1]:
            mine[name] = _resample_positions(source, value.shape[0]).to(value.dtype)
            resampled.append(name)
    student.load_state_dict(mine)
    return {"copied": copied, "resampled": resampled}


def _resample_positions(positions: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """(1 + g*g, D) class-token-first position embedding -> (n_tokens, D), grid bicubic."""
    side_from = int(round(math.sqrt(positions.shape[0] - 1)))
    side_to = int(round(math.sqrt(n_tokens - 1)))
    grid = positions[1:].float().reshape(1, side_from, side_from, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(side_to, side_to), mode="bicubic", align_corners=False)
    return torch.cat([positions[:1].float(), grid.permute(0, 2, 3, 1).reshape(side_to * side_to, -1)])


def distill(teacher_path: Path | str, sources: Sequence[DistillSource], out: Path | str,
            settings: DistillSettings = DistillSettings(), *, device="cpu",
            cache: Path | str | None = None, stage: Stage | None = None,
            should_cancel=None, notes: str = "") -> DistillResult:
    """Distil a student from the teacher checkpoint on `sources`; save it to the folder `out`
    (which must not exist) and return what came out. See the module docstring."""
    from microau_gui.model.checkpoint import load_checkpoint, save_checkpoint

    started = time.perf_counter()
    out = Path(out)
    if out.exists():
        raise UserError(f"{out} already exists; choose another folder for the student")
    if not sources:
        raise UserError("nothing to distil on: give --videos and/or --synthetic N")
    teacher, teacher_card = load_checkpoint(teacher_path, device=device)
    config = student_config(teacher_card.config, settings.backbone)
    train_sources, held_sources = _split(sources, settings.holdout_fraction, settings.seed)
    teacher_prep = checkpoint_prep_settings(teacher_card)

    with deterministic(settings.seed, settings.threads):
        student = build_model(config, settings.seed).to(device)
        # The teacher's flow size (or the one asked for), measured the student's way, resampled
        # to the student's crop.
        student_prep = PrepSettings(size=student.image_size,
                                    flow_size=settings.flow_size or teacher_prep.flow_side,
                                    flow_method=settings.flow_method)
        samples = [s for source in sources for s in source.samples]
        teacher_pairs, student_pairs = _prepare_both(samples, teacher_prep, student_prep, cache,
                                                     stage, should_cancel)
        if not teacher_pairs:
            raise UserError("no face was found in any frame pair of the sources; nothing to distil on")
        held_media = {str(Path(s.media_path)) for source in held_sources for s in source.samples}
        held = np.array([str(Path(p.sample.media_path)) in held_media for p in teacher_pairs])
        labelled = predict_pairs(teacher, teacher_pairs, with_pta=True, should_cancel=should_cancel,
                                 progress=None if stage is None else
                                 (lambda done, total: stage("teacher labelling", done, total)))
        soft = torch.from_numpy(labelled.probs.astype(np.float32))  # (N, n_au)
        maps = torch.from_numpy(maps_on_grid(labelled.pta, student.grid_size))  # (N, n_au, P)
        initialised = init_from_teacher(student, teacher) if settings.init == "teacher" else None
        student.set_dependency_prior(teacher.dependency_prior.detach().cpu())
        del teacher

        train_idx = np.flatnonzero(~held)
        if len(train_idx) == 0:
            raise UserError("every frame pair is held out; give more sources")
        losses = _fit(student, [student_pairs[i] for i in train_idx], soft[train_idx], maps[train_idx],
                      settings, device, stage, should_cancel)

        agreement = None
        held_idx = np.flatnonzero(held)
        if len(held_idx):
            probs = predict_pairs(student, [student_pairs[i] for i in held_idx]).probs
            agreement = agreement_report(labelled.probs[held_idx], probs, config.vocab,
                                         [teacher_pairs[i].subject for i in held_idx])

    trained = [student_pairs[i] for i in train_idx]
    metrics = {"teacher_agreement": _agreement_json(agreement, held_sources)}
    training_settings = {
        "distill": asdict(settings),
        "prep": student_prep.record(),
        "initialised_from_teacher": initialised,
        "subjects": sorted({p.subject for p in trained}),
        "sources": [s.name for s in train_sources],
        "held_out_sources": [s.name for s in held_sources],
        "config": config.to_dict(),
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_dir(out, named=True) as staging:  # the card is named after its folder
            card = save_checkpoint(
                student, staging, training_data_hash=training_data_hash(trained, config.vocab),
                metrics=metrics, teacher=teacher_card.version, training_settings=training_settings,
                notes=notes or f"distilled from {teacher_card.version} by `python main.py distill`")
    except FileExistsError:
        raise UserError(f"{out} already exists; choose another folder for the student") from None
    except OSError as err:
        raise UserError(f"cannot write the student to {out}: {err.strerror or err}") from None
    return DistillResult(card=card, agreement=agreement, n_train=len(train_idx), n_holdout=len(held_idx),
                         seconds=time.perf_counter() - started, epoch_losses=tuple(losses))


def _fit(student, pairs: Sequence[PairSample], soft: torch.Tensor, maps: torch.Tensor,
         settings: DistillSettings, device, stage: Stage | None, should_cancel) -> list[float]:
    """Train the student on the teacher's probabilities and PTA maps; mean loss per epoch."""
    train = settings.train_settings()
    arrays = _PairArrays(student, pairs, flip=False)
    groups = _param_groups(student, train)
    optimiser = torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98), eps=1e-6)
    steps_per_epoch = math.ceil(len(arrays) / settings.batch_size)
    n_steps = steps_per_epoch * settings.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _cosine_with_warmup(n_steps, settings.warmup_fraction))
    params = [p for g in groups for p in g["params"]]
    rng = np.random.default_rng(settings.seed)
    soft, maps = soft.to(device), maps.to(device)
    epoch_losses, step = [], 0
    student.train()
    for _ in range(settings.epochs):
        order = rng.permutation(len(arrays))
        losses = []
        for start in range(0, len(order), settings.batch_size):
            check_cancel(should_cancel)
            idx = order[start:start + settings.batch_size]
            output = student(arrays.batch(student, idx, np.zeros(len(idx), np.int64), None, 0.0))
            idx_t = torch.from_numpy(idx).to(device)
            loss = F.binary_cross_entropy_with_logits(output.logits.float(), soft[idx_t])
            if settings.pta_weight > 0:
                loss = loss + settings.pta_weight * pta_kl(output.pta_attention.float(), maps[idx_t])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, train.grad_clip)
            optimiser.step()
            scheduler.step()
            step += 1
            losses.append(float(loss.detach()))
            if stage is not None:
                stage("distilling", step, n_steps)
        epoch_losses.append(float(np.mean(losses)))
    student.eval()
    return epoch_losses


def agreement_report(teacher_probs: np.ndarray, student_probs: np.ndarray, vocab: Sequence[str],
                     subjects: Sequence[str]) -> AUReport:
    """The student's per-AU F1 against the teacher's thresholded labels (the teacher as truth)."""
    labels = (np.asarray(teacher_probs) >= DECISION_THRESHOLD).astype(np.uint8)
    return au_report(labels, student_probs, vocab, method="student-vs-teacher", protocol="held-out",
                     subjects=subjects)


def _agreement_json(report: AUReport | None, held_sources: Sequence[DistillSource]) -> dict:
    if report is None:
        return {"note": "no source was held out (one source only), agreement not measured"}
    out = report.to_json()
    out["held_out_sources"] = [s.name for s in held_sources]
    out["note"] = ("per-AU F1 of the student against the teacher's labels thresholded at "
                   f"{DECISION_THRESHOLD}, on sources never trained on; AUs the teacher never fires "
                   "there have no F1")
    return out


def _summary(report: AUReport) -> dict:
    """mean F1, min F1 and per-AU F1 (None where the reference has no positive) of a report."""
    scored = [s.f1 for s in report.per_au if s.f1 is not None]
    return {"mean_f1": report.mean_f1 if scored else None, "min_f1": min(scored) if scored else None,
            "per_au": {s.code: s.f1 for s in report.per_au},
            "support": {s.code: s.support for s in report.per_au}}


def distill_report(teacher_path: Path | str, student_path: Path | str, samples: Sequence[Sample], *,
                   device="cpu", cache: Path | str | None = None, stage: Stage | None = None,
                   should_cancel=None) -> dict:
    """Quality of a student on coded samples of subjects it never saw (see the module docstring).

    Samples of subjects in the student's card (`training_settings["subjects"]`) are refused: the
    figures must come from held-out subjects.
    """
    from microau_gui.model.checkpoint import load_checkpoint

    teacher, teacher_card = load_checkpoint(teacher_path, device=device)
    student, student_card = load_checkpoint(student_path, device=device, expected_vocab=teacher_card.vocab)
    if not student_card.is_student:
        raise UserError(f"{Path(student_path).name} is not a distilled student (its card names no teacher)")
    if student_card.teacher != teacher_card.version:
        raise UserError(f"{Path(student_path).name} was distilled from {student_card.teacher}, "
                        f"not from {teacher_card.version}")
    seen = set((student_card.training_settings or {}).get("subjects") or ())
    held = [s for s in samples if s.subject not in seen]
    if not held:
        raise UserError(f"every subject given was seen by the student ({', '.join(sorted(seen))}); "
                        "report on subjects it never saw")
    teacher_pairs, student_pairs = _prepare_both(
        held, checkpoint_prep_settings(teacher_card), checkpoint_prep_settings(student_card), cache,
        stage, should_cancel)
    if not teacher_pairs:
        raise UserError("no face was found in any held-out sample; nothing to score")
    vocab = teacher_card.vocab
    teacher_probs = predict_pairs(teacher, teacher_pairs, should_cancel=should_cancel).probs
    student_probs = predict_pairs(student, student_pairs, should_cancel=should_cancel).probs
    truth = labels_matrix(teacher_pairs, vocab)
    subjects = [p.subject for p in teacher_pairs]
    agreement = _summary(agreement_report(teacher_probs, student_probs, vocab, subjects))
    teacher_gt = _summary(au_report(truth, teacher_probs, vocab, method="teacher", protocol="held-out",
                                    subjects=subjects))
    student_gt = _summary(au_report(truth, student_probs, vocab, method="student", protocol="held-out",
                                    subjects=subjects))
    gap = (None if teacher_gt["mean_f1"] is None or student_gt["mean_f1"] is None
           else teacher_gt["mean_f1"] - student_gt["mean_f1"])
    return {
        "teacher": teacher_card.version, "student": student_card.version,
        "subjects": sorted(set(subjects)), "n_samples": len(teacher_pairs),
        "threshold": DECISION_THRESHOLD,
        "agreement": agreement, "teacher_vs_truth": teacher_gt, "student_vs_truth": student_gt,
        "mean_f1_gap": gap, "targets": dict(DISTILL_TARGETS),
        "met": {"per_au_f1_vs_teacher": (agreement["min_f1"] is not None
                                         and agreement["min_f1"] >= DISTILL_TARGETS["per_au_f1_vs_teacher"]),
                "mean_f1_gap": gap is not None and gap <= DISTILL_TARGETS["max_mean_f1_gap"]},
        "note": ("held-out subjects' coded onset->apex pairs; agreement = student F1 against the "
                 f"teacher's labels at {DECISION_THRESHOLD} (AUs the teacher never fires have no F1); "
                 "truth = the coding sheet"),
    }
