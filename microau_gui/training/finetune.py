"""Fine-tuning a model version on a project's coded events: the predict-correct-retrain loop.

Owns: `EventSelection`, `TrainingSnapshot`, `snapshot_events`, `FinetuneOptions`,
`FinetuneProgress`, `StageCurve`, `FinetuneResult`, `run_finetune`, `register_result`,
`discard_result`, `finetune_project`, `check_output`, `default_output`, `format_comparison`.
May import model, face, media, store, core and training's own modules; no Qt. The GUI's worker
and the `finetune` command both call it.

How a fine-tune runs (our specification; DESIGN.md section 3):
1. **Snapshot** (`snapshot_events`): the selected expert / accepted events are copied out of the
   project with their videos and subjects, as frozen `core.types.Sample`s. Training reads only
   this snapshot, never the live store, so edits made meanwhile neither leak in nor conflict.
   A video without a subject counts as its own subject, "(video NAME)".
2. **Pairs**: each event's onset (reference) and apex (target) frames are cut and their flow
   measured by `pairs.samples.prepare_samples`, with the parent's recorded crop and flow
   size, so the fine-tuned model sees exactly what the parent saw; prepared pairs are cached.
3. **Evaluation, leakage-safe.** Two protocols:
   - `holdout_subjects` given: one stage trains on every other subject; "before" is the parent
     and "after" the trained model, both scored on the held-out subjects' pairs. The saved
     model IS that trained model, so "after" is the saved weights on subjects they never saw.
   - none given: leave-one-subject-out. One stage per subject fine-tunes the parent on all the
     other subjects and scores the left-out one; "after" is computed once on the predictions
     pooled over folds (`training.metrics`); "before" is the parent on the same pairs. Then a
     final stage fine-tunes the parent on every subject, and that model is saved: its "after"
     is the cross-validated estimate of the *procedure*, not a score of the saved weights (which
     saw every subject). `holdout_subjects` then lists every subject.
   The GDLoss prior and positive-class weights come from each stage's training pairs only
   (`trainer.train_model`). A parent that was itself trained on the evaluated subjects has seen
   them; `FinetuneResult.parent_seen_subjects` says so (matched by subject name).
4. **Schedule**: the parent's loss weights (its config) and optimiser schedule (its card's
   `training_settings["training"]`: lr, batch size, weight decay, warm-up, cosine decay, flip,
   seed) are kept; only `epochs` is the fine-tune's own (default 20). `train_blocks` sets how
   many last backbone blocks train: 0 (the default) trains the heads only, with the backbone's
   tokens read from the persistent `training.token_cache` (the parent's "before" scores and the
   per-epoch validation use the same tokens, so a repeated fine-tune runs no backbone pass).
5. **Save**: the new checkpoint is written under a temporary folder next to `out` and renamed
   into place only after the last stage, so a cancelled or failed run leaves no checkpoint. Its
   card records the parent version, the training-data hash, the "after" report (top level, as
   `train` does), the "before" report and how they were made (`metrics["finetune"]`).
6. **Register** (`register_result`): the new version (and the parent, when the project does not
   list it yet) is added to the project in one transaction, not active unless asked. Rollback is
   `project.models.set_active(older_id)`; predictions stay cached per version.
`run_finetune` never touches the project; cancelling (`should_cancel`, polled every step)
raises `core.progress.Cancelled` with the active model, the store and the weights folder unchanged.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch

from microau_gui.core.errors import UserError
from microau_gui.core.files import atomic_dir
from microau_gui.core.paths import cache_dir
from microau_gui.core.progress import check_cancel
from microau_gui.core.types import DECISION_THRESHOLD, Sample
from microau_gui.face.motion import flow_image
from microau_gui.model.card import ModelCard
from microau_gui.model.checkpoint import load_checkpoint, save_checkpoint
from microau_gui.model.network import MicroAUCLIP, PairTokens
from microau_gui.training import distributed
from microau_gui.training.metrics import AUReport, au_report
from microau_gui.training.protocols import holdout_fold, loso_folds, split
from microau_gui.pairs.samples import (
    PairSample,
    checkpoint_prep_settings,
    labels_matrix,
    prepare_samples,
    sample_masks,
    training_data_hash,
)
from microau_gui.training.token_cache import TokenCache, default_token_dir
from microau_gui.training.trainer import TrainProgress, TrainSettings, deterministic, predict_pairs, train_model

log = logging.getLogger(__name__)

EVENT_SOURCES: tuple[str, ...] = ("expert", "accepted")
METHOD = "micro-au-clip fine-tuned"
DEFAULT_EPOCHS = 20
_SCORE_BATCH = 64  # pairs per head-only scoring call


# -- the label snapshot --------------------------------------------------------------------------

@dataclass(frozen=True)
class EventSelection:
    """Which of the project's events a fine-tune learns from."""

    sources: tuple[str, ...] = EVENT_SOURCES  # "expert" (the coder's) and/or "accepted" predictions
    event_ids: tuple[int, ...] | None = None  # only these events (still filtered by source); None = all
    expression_types: tuple[str, ...] = ("micro",)  # macro-expressions are left out by default


@dataclass(frozen=True)
class TrainingSnapshot:
    """The selected events, copied out of the project when the fine-tune was asked for."""

    project_path: Path  # the project they came from (recorded in the card)
    samples: tuple[Sample, ...]  # one per event; media_path = the event's video
    event_ids: tuple[int, ...]  # the event of each sample
    version_names: tuple[str, ...]  # model versions the project already has (names are unique)

    @property
    def subjects(self) -> tuple[str, ...]:
        return tuple(sorted({s.subject for s in self.samples}))


def snapshot_events(project, selection: EventSelection = EventSelection()) -> TrainingSnapshot:
    """Copy the selected events of an open `store.project.Project` (see the module docstring)."""
    unknown = sorted(set(selection.sources) - set(EVENT_SOURCES))
    if unknown or not selection.sources:
        raise UserError(f"event source {', '.join(unknown) or '(none)'} is unknown; use "
                        f"{' and/or '.join(EVENT_SOURCES)}")
    videos = {video.id: video for video in project.videos()}
    events = [e for e in project.events() if e.source in selection.sources
              and e.expression_type in selection.expression_types]
    if selection.event_ids is not None:
        wanted = set(selection.event_ids)
        missing = sorted(wanted - {e.id for e in project.events()})
        if missing:
            raise UserError(f"events {', '.join(map(str, missing[:5]))} are not in the project; "
                            "refresh the selection")
        events = [e for e in events if e.id in wanted]
    if not events:
        raise UserError(f"the project has no {' or '.join(selection.sources)} "
                        f"{'/'.join(selection.expression_types)} events to fine-tune on; code or "
                        "accept some events first")
    samples = []
    for event in events:
        video = videos[event.video_id]
        if not video.path.exists():
            raise UserError(f"the media of video {video.name} is missing at {video.path}; relink it "
                            "or leave its events out")
        samples.append(Sample(
            subject=video.subject or f"(video {video.name})", clip=video.name,
            media_path=video.path, onset=event.onset, apex=event.apex, offset=event.offset,
            aus=event.aus, emotion=event.emotion, objective_class=event.objective_class,
            expression_type=event.expression_type,
        ))
    return TrainingSnapshot(project_path=Path(project.path), samples=tuple(samples),
                            event_ids=tuple(e.id for e in events),
                            version_names=tuple(v.name for v in project.models.list()))


# -- options, progress, result -------------------------------------------------------------------

@dataclass(frozen=True)
class FinetuneOptions:
    """How a fine-tune runs; what is not here comes from the parent model."""

    holdout_subjects: tuple[str, ...] = ()  # evaluate on these; () = one subject out per fold
    epochs: int = DEFAULT_EPOCHS  # passes over the training pairs, per stage
    train_blocks: int = 0  # last backbone blocks that train: 0 = heads only (fast), -1 = all
    seed: int | None = None  # None = the parent's training seed
    threads: int | None = None  # torch CPU threads while running; None = leave as is
    device: str = "cpu"  # torch device ("cpu", "cuda", "auto")
    pair_cache: Path | None = None  # prepared pairs; None = core.paths.cache_dir("pairs")
    token_cache: Path | None = None  # backbone tokens; None = token_cache.default_token_dir()
    use_cache: bool = True  # False: nothing is read from or written to either cache

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserError(f"--epochs {self.epochs}: fine-tune for at least 1 epoch")
        if self.train_blocks < -1:
            raise UserError(f"--train-blocks {self.train_blocks}: use 0 (heads only), a number of "
                            "last blocks, or -1 (the whole backbone)")
        object.__setattr__(self, "holdout_subjects",
                           tuple(dict.fromkeys(s.strip() for s in self.holdout_subjects if s.strip())))


@dataclass(frozen=True)
class FinetuneProgress:
    """Reported during a fine-tune; `epoch_end` reports carry the points of the live curves."""

    phase: str  # "prepare", "score parent", "train", "save"
    fraction: float  # 0..1 of the whole run, for a progress bar
    message: str  # one line for a status bar, e.g. "training test 02 (fold 1/3): epoch 4/20"
    stage: str = ""  # training stage: "test 02 (fold 1/3)", "final: all subjects", "holdout 02"
    stage_index: int = 0  # 0-based stage, of n_stages
    n_stages: int = 0
    epoch: int = 0  # 1-based epoch within the stage; 0 outside training
    n_epochs: int = 0
    loss: float | None = None  # the step's loss, or the epoch's mean loss when epoch_end
    val_f1: float | None = None  # epoch_end: mean F1 on the stage's held-out pairs (None: none held out)
    epoch_end: bool = False


FinetuneProgressCallback = Callable[[FinetuneProgress], None]


@dataclass(frozen=True)
class StageCurve:
    """Per-epoch mean training loss and held-out F1 of one training stage."""

    stage: str
    test_subjects: tuple[str, ...]  # () for the final model of leave-one-subject-out
    losses: tuple[float, ...]
    val_f1: tuple[float, ...]  # empty when nothing is held out


@dataclass(frozen=True, eq=False)
class FinetuneResult:
    """A finished fine-tune: the new checkpoint (written, not yet registered) and its scores."""

    checkpoint: Path  # the new checkpoint folder
    card: ModelCard  # its card (card.version is the new version's key)
    parent_checkpoint: Path
    parent_card: ModelCard
    protocol: str  # "holdout" or "loso" (see the module docstring)
    holdout_subjects: tuple[str, ...]  # subjects the before/after scores are measured on
    train_subjects: tuple[str, ...]  # subjects the saved model was trained on
    parent_seen_subjects: tuple[str, ...]  # evaluated subjects the parent was trained on (by name)
    before: AUReport  # the parent on the evaluated pairs
    after: AUReport  # the fine-tuned model(s) on the same pairs, never trained on their subject
    curves: tuple[StageCurve, ...]
    n_events: int  # events in the snapshot
    n_pairs: int  # events prepared into pairs
    skipped: tuple[tuple[int, str], ...]  # (event id, why it could not be used)
    out_of_vocab: dict[str, int]  # coded AUs the model does not predict -> events coding them
    seconds: float  # wall time of the whole run
    train_seconds: float  # wall time of the training stages
    tokens_encoded: int  # images run through the backbone for the token cache
    tokens_from_cache: int  # images whose tokens were read from disk

    def to_json(self) -> dict:
        """The `finetune --json` report (DESIGN.md section 3)."""
        return {
            "parent": self.parent_card.version, "model": self.card.version,
            "holdout_subjects": list(self.holdout_subjects), "seconds": round(self.seconds, 2),
            "before": _summary(self.before), "after": _summary(self.after),
        }

    def per_au(self) -> list[tuple[str, float | None, float | None, int]]:
        """(AU, F1 before, F1 after, support) per AU of the vocabulary, for the before/after table."""
        return [(b.code, b.f1, a.f1, b.support) for b, a in zip(self.before.per_au, self.after.per_au)]


def _summary(report: AUReport) -> dict:
    return {"mean_f1": round(report.mean_f1, 4), "per_au": report.to_json()["per_au"]}


def format_comparison(result: FinetuneResult) -> str:
    """The before/after per-AU F1 table the CLI prints (rounded as the card stores them, 4 places,
    so the table, the card and the window never differ in the last digit)."""

    def num(value: float | None) -> str:
        return "     -" if value is None else f"{round(value, 4):6.3f}"

    lines = [f"{'AU':6s} {'before':>6s} {'after':>6s} {'change':>7s} {'support':>8s}"]
    for code, before, after, support in result.per_au():
        change = "      -" if before is None or after is None else f"{round(after, 4) - round(before, 4):+7.3f}"
        lines.append(f"{code:6s} {num(before)} {num(after)} {change} {support:8d}")
    before_mean, after_mean = round(result.before.mean_f1, 4), round(result.after.mean_f1, 4)
    lines.append(f"{'mean':6s} {before_mean:6.3f} {after_mean:6.3f} {after_mean - before_mean:+7.3f}")
    return "\n".join(lines)


# -- output folder -------------------------------------------------------------------------------

def check_output(out: Path | str, taken_names: Sequence[str] = ()) -> Path:
    """The absolute checkpoint folder to write, or UserError when it exists, its name is a
    version the project already has, or its folder cannot be written."""
    out = Path(out).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UserError(f"{out} already exists; choose a new --out name (a model version's "
                        "checkpoint is never overwritten)")
    if out.name in set(taken_names):
        raise UserError(f"the project already has a model version named {out.name!r}; choose "
                        "another --out name")
    if out.name.startswith("."):
        raise UserError(f"--out {out.name}: a checkpoint name must not start with a dot")
    existing = next((p for p in (out.parent, *out.parent.parents) if p.exists()), None)
    if existing is None or not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise UserError(f"cannot write a checkpoint under {out.parent}: "
                        f"{existing or out.parent} is not a writable folder; choose another --out")
    return out


def default_output(project_path: Path | str, parent_name: str, taken_names: Sequence[str] = ()) -> Path:
    """`<project folder>/weights/<parent>-ftN`, the first N that is free (the GUI's default)."""
    folder = Path(project_path).absolute().parent / "weights"
    base = re.sub(r"-ft\d+$", "", parent_name) or "model"
    taken = set(taken_names)
    n = 1
    while (folder / f"{base}-ft{n}").exists() or f"{base}-ft{n}" in taken:
        n += 1
    return folder / f"{base}-ft{n}"


# -- the run ---------------------------------------------------------------------------------------

def _train_settings(card: ModelCard, options: FinetuneOptions) -> TrainSettings:
    """The parent's optimiser schedule with the fine-tune's epochs (and seed, threads if given)."""
    recorded = (card.training_settings or {}).get("training") or {}
    names = {f.name for f in fields(TrainSettings)}
    values = {k: v for k, v in recorded.items() if k in names}
    values.update(epochs=options.epochs, threads=options.threads)
    if distributed.world() is not None:
        values["dropout_masks"] = "per-row"  # masks that do not depend on the split (training.distributed)
    if options.seed is not None:
        values["seed"] = options.seed
    return TrainSettings(**values)


def _pair_images(model: MicroAUCLIP, pairs: Sequence[PairSample]) -> dict[str, np.ndarray]:
    """The uint8 images the backbone encodes per kind, one orientation: `(N, 1, S, S, 3)`."""
    config = model.config
    image_of = {"target": lambda p: p.target, "reference": lambda p: p.reference,
                "flow": lambda p: flow_image(p.flow)}
    return {name: np.stack([image_of[name](p) for p in pairs])[:, None] for name in config.image_kinds}


class _Scorer:
    """AU probabilities of fixed pairs under models sharing one frozen backbone, heads only."""

    def __init__(self, model: MicroAUCLIP, pairs: Sequence[PairSample], tokens: TokenCache):
        self.pairs = tuple(pairs)
        self.labels = labels_matrix(self.pairs, model.vocab)  # (N, n_au)
        encoded = distributed.sharded_tokens(lambda images: tokens.tokens(model, images),
                                             _pair_images(model, self.pairs))
        self.tokens = {name: value[:, 0] for name, value in encoded.items()}  # (N, P, D)
        self.masks = torch.from_numpy(np.stack([
            sample_masks(p.xy_crop, model.image_size, model.grid_size, model.vocab)
            for p in self.pairs]))  # (N, n_au, P)

    def probs(self, model: MicroAUCLIP, same_backbone: bool) -> np.ndarray:
        """`(N, n_au)` probabilities; a model whose backbone changed is run whole instead."""
        if not same_backbone:
            return predict_pairs(model, self.pairs).probs
        device = model.device
        out = []
        with torch.no_grad():
            for start in range(0, len(self.pairs), _SCORE_BATCH):
                rows = slice(start, start + _SCORE_BATCH)
                tokens = PairTokens(**{k: v[rows].to(device) for k, v in self.tokens.items()})
                output = model.forward_tokens(tokens, self.masks[rows].to(device))
                out.append(output.probs.float().cpu().numpy().astype(np.float64))
        return np.concatenate(out) if out else np.zeros((0, model.config.n_au))


def _mean_f1(labels: np.ndarray, probs: np.ndarray, threshold: float = DECISION_THRESHOLD) -> float:
    """Mean positive-class F1 over AUs that occur (as `metrics.au_report`, without sklearn's cost)."""
    pred = probs >= threshold
    truth = labels > 0
    tp = (pred & truth).sum(axis=0)
    fp = (pred & ~truth).sum(axis=0)
    fn = (~pred & truth).sum(axis=0)
    scored = truth.sum(axis=0) > 0
    if not scored.any():
        return 0.0
    return float(np.mean(2 * tp[scored] / np.maximum(2 * tp[scored] + fp[scored] + fn[scored], 1)))


@dataclass
class _Stage:
    name: str
    train: list[PairSample]
    test: list[PairSample]


@dataclass
class _Reporter:
    """Turns pipeline callbacks into `FinetuneProgress` with one overall fraction."""

    callback: FinetuneProgressCallback | None
    n_stages: int = 0
    stage_steps: list[int] = field(default_factory=list)
    done_steps: int = 0

    # shares of the progress bar
    PREPARE = 0.15
    SCORE = 0.05
    TRAIN = 0.75

    def send(self, **values) -> None:
        if self.callback is not None:
            self.callback(FinetuneProgress(n_stages=self.n_stages, **values))

    def prepare(self, done: int, total: int) -> None:
        self.send(phase="prepare", fraction=self.PREPARE * done / max(total, 1),
                  message=f"preparing pairs {done}/{total}")

    def train_fraction(self, step: int) -> float:
        total = max(sum(self.stage_steps), 1)
        return self.PREPARE + self.SCORE + self.TRAIN * (self.done_steps + step) / total


def _stages(pairs: Sequence[PairSample], holdout: Sequence[str]) -> tuple[str, list[_Stage]]:
    subjects = sorted({p.subject for p in pairs})
    if holdout:
        fold = holdout_fold(subjects, holdout)
        train, test = split(pairs, lambda p: p.subject, fold)
        return "holdout", [_Stage(fold.name, train, test)]
    if len(subjects) < 2:
        raise UserError(f"the selected events come from {len(subjects)} subject; a held-out "
                        "estimate needs at least 2 (assign subjects to the videos, or code more)")
    folds = loso_folds(subjects)
    stages = []
    for k, fold in enumerate(folds):
        train, test = split(pairs, lambda p: p.subject, fold)
        stages.append(_Stage(f"{fold.name} (fold {k + 1}/{len(folds)})", train, test))
    stages.append(_Stage("final: all subjects", list(pairs), []))
    return "loso", stages


def _out_of_vocab(samples: Sequence[Sample], vocab: Sequence[str]) -> dict[str, int]:
    from microau_gui.core.au import au_info

    known = {au_info(code).number for code in vocab}
    counts: dict[str, int] = {}
    for sample in samples:
        for number in {c.number for c in sample.aus if not c.uncertain} - known:
            counts[f"AU{number}"] = counts.get(f"AU{number}", 0) + 1
    return dict(sorted(counts.items(), key=lambda item: -item[1]))


def run_finetune(snapshot: TrainingSnapshot, parent: Path | str, out: Path | str,
                 options: FinetuneOptions = FinetuneOptions(), *,
                 progress: FinetuneProgressCallback | None = None,
                 should_cancel=None) -> FinetuneResult:
    """Fine-tune the checkpoint `parent` on `snapshot` and save the new checkpoint at `out`.

    Does not touch the project (see `register_result`). Raises `core.progress.Cancelled` when
    `should_cancel` (a callable or threading.Event) turns true, leaving nothing behind, and
    UserError for bad input (unknown held-out subject, one subject only, `out` taken ...).
    """
    from microau_gui.model.device import pick_device

    started = time.perf_counter()
    out = check_output(out, snapshot.version_names)
    unknown = sorted(set(options.holdout_subjects) - set(snapshot.subjects))
    if unknown:
        raise UserError(f"held-out subjects {', '.join(unknown)} have no selected events "
                        f"(subjects: {', '.join(snapshot.subjects)})")
    device = pick_device(options.device)
    parent_model, parent_card = load_checkpoint(parent, device=device)
    settings = _train_settings(parent_card, options)
    report = _Reporter(progress)
    with deterministic(settings.seed, options.threads):
        pair_dir = (options.pair_cache or cache_dir("pairs")) if options.use_cache else None
        prepared = prepare_samples(snapshot.samples, checkpoint_prep_settings(parent_card), cache_dir=pair_dir,
                                   progress=report.prepare, should_cancel=should_cancel)
        event_of = {id(sample): event_id for sample, event_id in zip(snapshot.samples, snapshot.event_ids)}
        skipped = tuple((event_of[id(sample)], reason) for sample, reason in prepared.skipped)
        pairs = list(prepared.pairs)
        if not pairs:
            reason = skipped[0][1] if skipped else "no events"
            raise UserError(f"none of the {len(snapshot.samples)} events could be prepared ({reason}); "
                            "check that the videos show a face")
        protocol, stages = _stages(pairs, options.holdout_subjects)
        report.n_stages = len(stages)
        report.stage_steps = [-(-len(s.train) // settings.batch_size) * settings.epochs for s in stages]

        parent_model.backbone.set_trainable_blocks(options.train_blocks)
        parent_model.config = replace(parent_model.config, train_backbone_blocks=options.train_blocks)
        frozen = not parent_model.backbone_trainable
        token_dir = (options.token_cache or default_token_dir()) if options.use_cache else None
        tokens = TokenCache(token_dir, parent_model)
        evaluated = [p for s in stages for p in s.test]
        report.send(phase="score parent", fraction=report.PREPARE,
                    message=f"scoring the parent on {len(evaluated)} held-out pairs")
        check_cancel(should_cancel)
        before_probs = _Scorer(parent_model, evaluated, tokens).probs(parent_model, True)

        curves: list[StageCurve] = []
        after_parts: list[np.ndarray] = []
        final_model = None
        train_started = time.perf_counter()
        for index, stage in enumerate(stages):
            check_cancel(should_cancel)
            model, curve, probs = _train_stage(parent_model, stage, index, settings, device, tokens,
                                               frozen, report, should_cancel)
            curves.append(curve)
            if stage.test:
                after_parts.append(probs)
            final_model = model
            report.done_steps += report.stage_steps[index]
        train_seconds = time.perf_counter() - train_started

    tokens_encoded = distributed.sum_int(tokens.n_encoded)
    vocab = parent_card.vocab
    labels = labels_matrix(evaluated, vocab)
    eval_subjects = tuple(sorted({p.subject for p in evaluated}))
    before = au_report(labels, before_probs, vocab, method=parent_card.name, protocol=protocol,
                       subjects=eval_subjects)
    after = au_report(labels, np.concatenate(after_parts), vocab, method=METHOD, protocol=protocol,
                      subjects=eval_subjects)
    final_pairs = stages[-1].train
    train_subjects = tuple(sorted({p.subject for p in final_pairs}))
    parent_subjects = set((parent_card.training_settings or {}).get("subjects") or ())
    seen = tuple(s for s in eval_subjects if s in parent_subjects)
    check_cancel(should_cancel)
    report.send(phase="save", fraction=report.PREPARE + report.SCORE + report.TRAIN,
                message=f"saving {out.name}")
    prep = prepared.settings
    metrics = after.to_json()
    metrics["before"] = before.to_json()
    metrics["finetune"] = {
        "protocol": protocol, "holdout_subjects": list(eval_subjects), "parent": parent_card.version,
        "parent_seen_subjects": list(seen),
        "after_is": ("the saved model on held-out subjects it never saw" if protocol == "holdout" else
                     "leave-one-subject-out estimate of this fine-tune (pooled over folds); the saved "
                     "model was then trained on every subject"),
    }
    training_settings = {
        "training": settings.to_dict(),
        "prep": prep.record(),
        "subjects": list(train_subjects),
        "finetune": {
            "parent": parent_card.version, "project": str(snapshot.project_path),
            "train_blocks": options.train_blocks, "events": len(snapshot.samples),
            "pairs": len(final_pairs), "event_ids": list(snapshot.event_ids),
            "processes": 1 if distributed.world() is None else distributed.world().size,
            "tokens_encoded": tokens_encoded,  # backbone passes of every process together
        },
        "seconds": round(train_seconds, 1),
    }
    card = _save_atomically(final_model, out, training_data_hash=training_data_hash(final_pairs, vocab),
                            metrics=metrics, parent=parent_card.version,
                            training_settings=training_settings,
                            notes=f"fine-tuned from {parent_card.version} on {len(final_pairs)} coded "
                                  f"events of {snapshot.project_path.name}")
    return FinetuneResult(
        checkpoint=out, card=card, parent_checkpoint=Path(parent).absolute(), parent_card=parent_card,
        protocol=protocol, holdout_subjects=eval_subjects, train_subjects=train_subjects,
        parent_seen_subjects=seen, before=before, after=after, curves=tuple(curves),
        n_events=len(snapshot.samples), n_pairs=len(pairs), skipped=skipped,
        out_of_vocab=_out_of_vocab(snapshot.samples, vocab), seconds=time.perf_counter() - started,
        train_seconds=train_seconds, tokens_encoded=tokens_encoded, tokens_from_cache=tokens.n_loaded,
    )


def _train_stage(parent: MicroAUCLIP, stage: _Stage, index: int, settings: TrainSettings, device,
                 tokens: TokenCache, frozen: bool, report: _Reporter,
                 should_cancel) -> tuple[MicroAUCLIP, StageCurve, np.ndarray | None]:
    """Fine-tune a copy of `parent` on the stage's training pairs, scoring its test pairs each epoch."""
    # A frozen backbone is shared by every copy (memo maps it to itself): only the heads are new.
    memo = {id(parent.backbone): parent.backbone} if frozen else {}
    model = copy.deepcopy(parent, memo)
    scorer = _Scorer(parent, stage.test, tokens) if stage.test else None
    losses: list[float] = []
    val_f1: list[float] = []
    last_probs: list[np.ndarray] = []
    base = dict(stage=stage.name, stage_index=index, n_epochs=settings.epochs)

    def on_step(step: TrainProgress) -> None:
        report.send(phase="train", fraction=report.train_fraction(step.step), epoch=step.epoch,
                    loss=step.loss, message=f"training {stage.name}: epoch {step.epoch}/{step.n_epochs}",
                    **base)

    def on_epoch_end(epoch: int, loss: float, trained: MicroAUCLIP) -> None:
        losses.append(loss)
        f1 = None
        if scorer is not None:
            probs = scorer.probs(trained, frozen)
            last_probs[:] = [probs]
            f1 = _mean_f1(scorer.labels, probs)
            val_f1.append(f1)
        steps = -(-len(stage.train) // settings.batch_size) * epoch
        report.send(phase="train", fraction=report.train_fraction(steps), epoch=epoch, loss=loss,
                    val_f1=f1, epoch_end=True, message=f"training {stage.name}: epoch {epoch}/"
                    f"{settings.epochs}, loss {loss:.3f}" + ("" if f1 is None else f", held-out F1 {f1:.2f}"),
                    **base)

    train_model(model, stage.train, settings, device=device, stage=stage.name, progress=on_step,
                should_cancel=should_cancel, token_source=tokens.tokens if frozen else None,
                on_epoch_end=on_epoch_end)
    curve = StageCurve(stage.name, tuple(sorted({p.subject for p in stage.test})), tuple(losses),
                       tuple(val_f1))
    return model, curve, (last_probs[0] if last_probs else None)


def _save_atomically(model: MicroAUCLIP, out: Path, **card_fields) -> ModelCard:
    """Save under a temporary sibling folder, then rename into place (no half-written checkpoint)."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        def write():
            with atomic_dir(out, named=True) as staging:  # the card is named after its folder
                return save_checkpoint(model, staging, **card_fields)

        return distributed.main_writes(write)  # rank 0 writes; the others get its card
    except OSError as err:
        raise UserError(f"cannot put the checkpoint at {out}: {err.strerror or err}; choose "
                        "another --out") from None


# -- the project's side ----------------------------------------------------------------------------

def register_result(project, result: FinetuneResult, *, activate: bool = False):
    """Add the new version (and its parent, if the project lacks it) in one transaction.

    Returns the new `store.records.ModelVersion`; it becomes the active model only if `activate`.
    """
    with project.transaction():
        parent = project.models.register(result.parent_card, result.parent_checkpoint)
        return project.models.register(result.card, result.checkpoint, parent_id=parent.id,
                                       activate=activate)


def discard_result(result: FinetuneResult, project=None) -> None:
    """Throw a fine-tuned version away: unregister it from `project` (refused while it is active
    or has children) and delete its checkpoint folder."""
    if project is not None:
        version = project.models.find(result.card.name)
        if version is not None:
            project.models.remove(version.id)
    if (result.checkpoint / "card.json").is_file():
        shutil.rmtree(result.checkpoint)


def finetune_project(project, parent: Path | str, out: Path | str,
                     options: FinetuneOptions = FinetuneOptions(),
                     selection: EventSelection = EventSelection(), *, activate: bool = False,
                     snapshot: TrainingSnapshot | None = None,
                     progress: FinetuneProgressCallback | None = None, should_cancel=None):
    """Snapshot (unless given), fine-tune and register in one call (the CLI's path); returns
    (result, the new `ModelVersion`). A failure while registering deletes the new checkpoint
    again, so nothing is left half done.
    """
    snapshot = snapshot or snapshot_events(project, selection)
    result = run_finetune(snapshot, parent, out, options, progress=progress, should_cancel=should_cancel)
    if not distributed.is_main():
        return result, None  # the project has one writer: rank 0 registers
    try:
        version = register_result(project, result, activate=activate)
    except BaseException:
        discard_result(result)
        raise
    return result, version
