"""Whole runs as the CLI (and later the GUI) starts them: data -> pairs -> folds -> report -> checkpoint.

Owns: `PreparedData`, `model_config`, `train_settings`, `prep_settings`, `prepare_data`,
`prepare_pooled`, `common_vocab`, `union_vocab`, `known_labels`, `per_dataset_reports`,
`folds_for`, `settings_json`, `train_and_save`, `train_all_and_save`, `evaluate_checkpoint`.
May import model, pairs, face, media, store, core and training's own modules; no Qt.

A checkpoint's card records, besides what `model.checkpoint` stores, how its pairs were prepared
(`training_settings["prep"]`: crop size, flow size, `PREP_VERSION`), so evaluation and inference
cut pairs and measure flow exactly as training did, and which subjects it was trained on, so an
evaluation on those subjects is flagged as not held out.

Pooled and cross-dataset protocols (`prepare_pooled`): several `KIND:SHEET:ROOT` sets are
prepared one by one and pooled. Subjects are namespaced by their set (`casme2:01`, `samm:006`;
a kind given twice becomes `casme2-2`), so subject 01 of two sets is two subjects, and pooled
leave-one-subject-out is the composite protocol labs run on CASME II + SAMM + CAS(ME)^3. With a
test set (`train --test-dataset`), one fold trains on every training set's subjects and tests
on the test set's. Vocabulary: the AUs of the model's vocabulary that are coded (occur at least
once) in every set (`common_vocab`); the others are dropped and the report says which, because
an AU a set never codes has unknown, not negative, labels there. The alternative, "union"
(`union_vocab`, `known_labels`): every AU that at least one set codes is kept, and wherever a
set does not code an AU its label is *unknown*: the loss (BCE, MiAUCL), the class weights, the
GDLoss prior, the flow-SVM's per-AU fit, the nested thresholds and the F1 of that AU skip those
samples. Reports add the F1 of each set beside the pooled one (`per_dataset_reports`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.core.types import Dataset
from microau_gui.model.config import SCRATCH_BACKBONES, MicroAUConfig, backbone_model_cfg
from microau_gui.model.device import pick_device
from microau_gui.pairs.samples import (
    DEFAULT_FLOW_METHOD,
    DEFAULT_FLOW_SIZE,
    PreparedSet,
    PrepSettings,
    checkpoint_prep_settings,
    prepare_samples,
    training_data_hash,
)
from microau_gui.training import distributed
from microau_gui.training.datasets import DatasetSpec, load_dataset, parse_dataset_spec, select_subjects
from microau_gui.training.emotion import recognise, reference_labels
from microau_gui.training.experiment import (METHODS, MethodRun, cross_validate, score_predictions,
                                             with_nested_thresholds)
from microau_gui.training.metrics import emotion_scores
from microau_gui.training.protocols import Fold, loso_folds, subject_folds
from microau_gui.training.trainer import Progress, TrainSettings, predict_pairs, train_model

__all__ = [
    "METHODS", "PreparedData", "cross_validate", "with_nested_thresholds",
    "evaluate_checkpoint", "folds_for", "model_config", "pick_device", "prep_settings",
    "prepare_data", "settings_json",
    "train_all_and_save", "train_and_save", "train_settings",
]

@dataclass(frozen=True, eq=False)
class PreparedData:
    spec: DatasetSpec
    dataset: Dataset  # the imported (and subject-filtered) samples
    prepared: PreparedSet  # their pairs
    sources: tuple[tuple[str, DatasetSpec], ...] = ()  # (label, spec) of pooled sets; () for one
    test_labels: tuple[str, ...] = ()  # labels of the sets that are only tested on


def model_config(*, backbone: str = "ViT-B-16", pretrained: str | None = None,
                 input_mode: str | None = None, no_gda: bool = False, no_gdloss: bool = False,
                 no_miaucl: bool = False, no_pta: str | None = None, text_side: str | None = None,
                 train_blocks: int | None = None,
                 vocab: Sequence[str] | None = None) -> MicroAUConfig:
    """The network config a `train` command line asks for (ablations included).

    no_pta: None (PTA on), "region" (mean over each AU's region) or "all" (mean over all patches).
    """
    overrides: dict = {}
    if no_pta is not None:
        overrides["pta_pooling"] = {"region": "region-mean", "all": "all-mean"}[no_pta]
    if text_side is not None:
        overrides["text_side"] = text_side
    if input_mode is not None:
        overrides["input_mode"] = input_mode
    if no_gda:
        overrides["use_gda"] = False
    if no_gdloss:
        overrides["lambda_g"] = 0.0
    if no_miaucl:
        overrides["lambda_c"] = 0.0
    if vocab:
        overrides["vocab"] = tuple(code.strip() for code in vocab if code.strip())
    if backbone in SCRATCH_BACKBONES:
        if pretrained is not None:
            overrides["pretrained"] = pretrained
        if train_blocks is not None:
            overrides["train_backbone_blocks"] = train_blocks
        return MicroAUConfig.tiny(backbone=backbone, **overrides)
    pretrained = pretrained or "openai"
    if train_blocks is None:
        train_blocks = -1 if pretrained.strip().lower() == "none" else 0
    return MicroAUConfig(backbone=backbone, pretrained=pretrained,
                         train_backbone_blocks=train_blocks, **overrides)


def train_settings(*, epochs: int | None = None, lr: float | None = None,
                   batch_size: int | None = None, weight_decay: float | None = None,
                   balanced: bool = False, seed: int = 0, threads: int | None = None,
                   dropout_masks: str = "torch") -> TrainSettings:
    """`TrainSettings` with the defaults for every option not given (distributed runs pass
    dropout_masks="per-row", see `training.distributed`)."""
    values = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "weight_decay": weight_decay}
    return replace(TrainSettings(balanced=balanced, seed=seed, threads=threads, dropout_masks=dropout_masks),
                   **{k: v for k, v in values.items() if v is not None})


def config_image_size(config: MicroAUConfig) -> int:
    """The crop side the network of `config` will expect, px."""
    if config.image_size:
        return int(config.image_size)
    size = backbone_model_cfg(config.backbone)["vision_cfg"].get("image_size", 224)
    return int(size if isinstance(size, int) else size[0])


def prep_settings(config: MicroAUConfig, flow_size: int | None = None,
                  flow_method: str | None = None) -> PrepSettings:
    size = config_image_size(config)
    return PrepSettings(size=size, flow_size=flow_size or max(size, DEFAULT_FLOW_SIZE),
                        flow_method=flow_method or DEFAULT_FLOW_METHOD)


def prepare_data(dataset: str | DatasetSpec, config: MicroAUConfig, *, flow_size: int | None = None,
                 flow_method: str | None = None,
                 subjects: Sequence[str] | None = None, cache: Path | str | None = None,
                 settings: PrepSettings | None = None, progress=None,
                 should_cancel=None) -> PreparedData:
    """Import a `KIND:SHEET:ROOT` dataset and prepare its pairs for `config`'s crop size."""
    spec = parse_dataset_spec(dataset) if isinstance(dataset, str) else dataset
    data = select_subjects(load_dataset(spec), subjects)
    settings = settings or prep_settings(config, flow_size, flow_method)
    prepared = prepare_samples(data.samples, settings, cache_dir=cache, numbering=spec.numbering,
                               progress=progress, should_cancel=should_cancel)
    if not prepared.pairs:
        reason = prepared.skipped[0][1] if prepared.skipped else "no samples"
        raise UserError(f"no sample of {spec.sheet.name} could be prepared ({reason}); "
                        "check that the clips show a face")
    return PreparedData(spec, data, prepared)


def _label_sets(specs: Sequence[DatasetSpec]) -> list[str]:
    labels, seen = [], {}
    for spec in specs:
        seen[spec.kind] = seen.get(spec.kind, 0) + 1
        labels.append(spec.kind if seen[spec.kind] == 1 else f"{spec.kind}-{seen[spec.kind]}")
    return labels


def prepare_pooled(datasets: Sequence[str | DatasetSpec], config: MicroAUConfig, *,
                   test_datasets: Sequence[str | DatasetSpec] = (), flow_size: int | None = None,
                   flow_method: str | None = None,
                   subjects: Sequence[str] | None = None, cache: Path | str | None = None,
                   progress=None, should_cancel=None) -> PreparedData:
    """Prepare and pool several sets, subjects namespaced by set (see the module docstring).

    One set and no test set: exactly `prepare_data`. `subjects` selects namespaced subjects
    (`casme2:01`) or, unqualified, that subject in every set.
    """
    specs = [parse_dataset_spec(d) if isinstance(d, str) else d for d in (*datasets, *test_datasets)]
    if len(specs) == 1:
        return prepare_data(specs[0], config, flow_size=flow_size, flow_method=flow_method,
                            subjects=subjects, cache=cache,
                            progress=progress, should_cancel=should_cancel)
    labels = _label_sets(specs)
    pairs, skipped, n_cached, samples, settings, first = [], [], 0, [], None, None
    for label, spec in zip(labels, specs):
        wanted = None
        if subjects:
            wanted = [s.split(":", 1)[1] if ":" in s else s for s in subjects
                      if ":" not in s or s.split(":", 1)[0] == label] or None
            if wanted is None:
                continue
        part = prepare_data(spec, config, flow_size=flow_size, flow_method=flow_method,
                            subjects=wanted, cache=cache,
                            progress=progress, should_cancel=should_cancel)
        settings = part.prepared.settings
        first = first or part.dataset
        for pair in part.prepared.pairs:
            named = replace(pair.sample, subject=f"{label}:{pair.sample.subject}")
            pairs.append(replace(pair, sample=named))
            samples.append(named)
        skipped += list(part.prepared.skipped)
        n_cached += part.prepared.n_cached
    if first is None:
        raise UserError(f"no dataset has the subjects {', '.join(subjects or ())}; name them as "
                        "KIND:SUBJECT, e.g. casme2:01")
    prepared = PreparedSet(tuple(pairs), tuple(skipped), n_cached, settings)
    return PreparedData(specs[0], replace(first, samples=tuple(samples)), prepared,
                        sources=tuple(zip(labels, specs)),
                        test_labels=tuple(labels[len(datasets):]))


def dataset_of(subject: str) -> str:
    """The set label of a namespaced subject (`casme2:01` -> `casme2`); "" when not namespaced."""
    return subject.split(":", 1)[0] if ":" in subject else ""


def common_vocab(data: PreparedData, vocab: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(kept, dropped): the AUs of `vocab` that every pooled set codes at least once."""
    from microau_gui.pairs.samples import au_labels

    if not data.sources:
        return tuple(vocab), ()
    kept = []
    for k, code in enumerate(vocab):
        coded = {dataset_of(p.subject) for p in data.prepared.pairs if au_labels(p.sample.aus, vocab)[k]}
        if all(label in coded for label, _ in data.sources):
            kept.append(code)
    if not kept:
        raise UserError("no AU of the vocabulary is coded in every dataset; pool sets that share AUs "
                        "or choose --vocab")
    return tuple(kept), tuple(c for c in vocab if c not in kept)


def union_vocab(data: PreparedData, vocab: Sequence[str]):
    """(kept, dropped, coded_by) for the union policy: the AUs of `vocab` that at least one
    pooled set codes (occurs at least once), the others, and {set label: the AUs it codes}."""
    from microau_gui.pairs.samples import au_labels

    coded_by: dict[str, set[str]] = {label: set() for label, _ in data.sources}
    for pair in data.prepared.pairs:
        active = au_labels(pair.sample.aus, vocab)
        coded_by.setdefault(dataset_of(pair.subject), set()).update(c for c, a in zip(vocab, active) if a)
    kept = tuple(c for c in vocab if any(c in codes for codes in coded_by.values()))
    if not kept:
        raise UserError("no AU of the vocabulary is coded in any dataset; choose --vocab")
    return (kept, tuple(c for c in vocab if c not in kept),
            {label: tuple(c for c in kept if c in codes) for label, codes in coded_by.items()})


def known_labels(coded_by: dict[str, Sequence[str]], vocab: Sequence[str]):
    """`trainer.KnownLabels` of the union policy: a pair's label k is known when its set codes
    AU k (`coded_by` from `union_vocab`)."""
    coded = {label: set(codes) for label, codes in coded_by.items()}

    def known(pairs) -> np.ndarray:
        return np.array([[code in coded.get(dataset_of(p.subject), ()) for code in vocab]
                         for p in pairs], dtype=bool).reshape(len(pairs), len(vocab))  # (N, n_au)

    return known


def per_dataset_reports(run: MethodRun, vocab: Sequence[str], known=None) -> dict:
    """{set label: {"mean_f1", "mean_macro_f1", "n_samples", "n_subjects"}} of a pooled run
    (each AU scored where its label is `known`, when given)."""
    from microau_gui.training.metrics import au_report

    out = {}
    labels = sorted({dataset_of(p.subject) for p in run.pairs} - {""})
    for label in labels:
        rows = [i for i, p in enumerate(run.pairs) if dataset_of(p.subject) == label]
        pairs = [run.pairs[i] for i in rows]
        report = au_report(run.labels[rows], run.scores[rows], vocab, method=run.method,
                           protocol=run.protocol, subjects=[p.subject for p in pairs],
                           known=None if known is None else known(pairs))
        out[label] = {"mean_f1": round(report.mean_f1, 4), "mean_macro_f1": round(report.mean_macro_f1, 4),
                      "n_samples": report.n_samples, "n_subjects": report.n_subjects}
    return out


def cross_dataset_fold(data: PreparedData) -> Fold:
    """Train on every subject of the training sets, test on the test sets' subjects."""
    test = tuple(s for s in data.prepared.subjects if dataset_of(s) in data.test_labels)
    train = tuple(s for s in data.prepared.subjects if dataset_of(s) not in data.test_labels)
    if not test or not train:
        raise UserError("cross-dataset needs subjects in both the training and the test sets")
    return Fold("test " + "+".join(data.test_labels), train, test)


def folds_for(protocol: str, subjects: Sequence[str], n_folds: int = 5, seed: int = 0) -> tuple[Fold, ...]:
    if protocol == "loso":
        return loso_folds(subjects)
    if protocol == "kfold":
        return subject_folds(subjects, n_folds, seed)
    raise UserError(f"unknown protocol {protocol!r}; use loso or kfold")


def settings_json(config: MicroAUConfig | None, settings: TrainSettings, data: PreparedData) -> dict:
    """How a run was made, for reports and model cards."""
    prep = data.prepared.settings
    out = {
        "training": settings.to_dict(),
        "prep": prep.record(),
        "dataset": {"kind": data.spec.kind, "sheet": str(data.spec.sheet), "root": str(data.spec.root)},
        "subjects": list(data.prepared.subjects),
    }
    if data.sources:
        out["datasets"] = [{"label": label, "kind": spec.kind, "sheet": str(spec.sheet),
                            "root": str(spec.root), "test_only": label in data.test_labels}
                           for label, spec in data.sources]
    if config is not None:
        out["config"] = config.to_dict()
    return out


def train_and_save(data: PreparedData, config: MicroAUConfig, settings: TrainSettings, device,
                   out: Path | str, *, metrics: dict, progress: Progress | None = None,
                   should_cancel=None, notes: str = "", known=None):
    """Train on every prepared pair and save to `out`; returns the `ModelCard`."""
    from microau_gui.model.checkpoint import save_checkpoint

    result = train_model(config, data.prepared.pairs, settings, device=device, stage="all subjects",
                         progress=progress, should_cancel=should_cancel, known=known)
    return distributed.main_writes(lambda: save_checkpoint(
        result.model, out, training_data_hash=training_data_hash(data.prepared.pairs, config.vocab),
        metrics=metrics, training_settings={**settings_json(config, settings, data),
                                            "seconds": round(result.seconds, 1)},
        notes=notes or "trained by `python main.py train`",
    ))


def train_all_and_save(data: PreparedData, config: MicroAUConfig, settings: TrainSettings, device,
                       out: Path | str, *, progress: Progress | None = None, should_cancel=None,
                       known=None):
    """`--protocol all`: train on every subject, save, and score the training pairs.

    Returns (card, MethodRun scored on the training subjects, protocol "all").
    """
    from microau_gui.model.checkpoint import save_checkpoint

    pairs = data.prepared.pairs
    result = train_model(config, pairs, settings, device=device, stage="all subjects",
                         progress=progress, should_cancel=should_cancel, known=known)
    fit = score_predictions("micro-au-clip", "all", pairs, predict_pairs(result.model, pairs).probs,
                            config.vocab, result.seconds, known)
    metrics = fit.to_json()
    metrics["note"] = "scored on the training subjects (not held out)"
    card = distributed.main_writes(lambda: save_checkpoint(
        result.model, out, training_data_hash=training_data_hash(pairs, config.vocab),
        metrics=metrics, training_settings={**settings_json(config, settings, data),
                                            "seconds": round(result.seconds, 1)},
        notes="trained by `python main.py train --protocol all`",
    ))
    return card, fit


@dataclass(frozen=True, eq=False)
class Evaluation:
    run: MethodRun  # AU scores of the checkpoint on the dataset (protocol "eval")
    seen_subjects: tuple[str, ...]  # evaluated subjects the model was trained on (not held out)
    card: object  # the checkpoint's ModelCard
    recognition: dict | None  # {"uf1", "uar", "n_samples", ...} when asked for


def evaluate_checkpoint(model_path: Path | str, dataset: str | DatasetSpec, *, task: str = "au",
                        labels: str = "auto", subjects: Sequence[str] | None = None,
                        cache: Path | str | None = None, device="cpu", progress=None,
                        should_cancel=None) -> Evaluation:
    """Score a saved model on a dataset, preparing pairs exactly as its training did."""
    from microau_gui.model.checkpoint import load_checkpoint

    if task not in ("au", "emotion"):
        raise UserError(f"unknown task {task!r}; use au or emotion")
    model, card = load_checkpoint(model_path, device=device)
    settings = checkpoint_prep_settings(card)
    data = prepare_data(dataset, card.config, subjects=subjects, cache=cache, settings=settings,
                        progress=progress, should_cancel=should_cancel)
    pairs = data.prepared.pairs
    probs = predict_pairs(model, pairs, should_cancel=should_cancel).probs
    run = score_predictions("micro-au-clip", "eval", pairs, probs, model.vocab)
    trained_on = set((card.training_settings or {}).get("subjects") or ())
    seen = tuple(s for s in data.prepared.subjects if s in trained_on)
    recognition = None
    if task == "emotion":
        kind, truth = reference_labels([p.sample for p in pairs], labels)
        recognition = emotion_scores(truth, recognise(probs, model.vocab, kind))
        recognition["labels"] = kind
    return Evaluation(run, seen, card, recognition)
