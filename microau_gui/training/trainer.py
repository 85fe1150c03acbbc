"""Training and prediction of Micro-AU CLIP on prepared pairs: AdamW, cosine schedule, seeded.

Owns: `TrainSettings`, `TrainProgress`, `TrainResult`, `Predictions`, `build_model`,
`train_model`, `predict_pairs`, `deterministic`. May import model, face, core and training's own
modules (torch, numpy); no Qt.

All of this is our specification (the paper states the losses, not how to optimise them):
- The GDLoss prior and the BCE positive-class weights come from the labels of the pairs passed
  in, i.e. the training split only; held-out subjects are never seen here.
- AdamW (decoupled weight decay on matrices only, not on biases, norms or the temperature), a
  linear warm-up then a cosine decay to zero, stepped per batch; gradient norm clipped at 1.
  Backbone parameters can get a smaller learning rate (`backbone_lr_scale`).
- Augmentation (training only): horizontal flip of the whole pair with probability 1/2 and
  colour jitter of the crops (see `training.augment`). Both orientations are prepared once, so
  a step only indexes arrays.
- A frozen backbone (`train_backbone_blocks = 0`) is run once per pair and orientation and its
  tokens reused every epoch (colour jitter is then off: it would need a backbone pass). A
  `token_source` (e.g. `training.token_cache.TokenCache.tokens`) may supply those tokens
  instead, from tokens kept across runs.
- `on_epoch_end(epoch, mean_loss, model)` is called after every epoch with the model in eval
  mode (fine-tuning scores held-out pairs there for its validation curve).
- Seeded and deterministic: the model is built under `torch.manual_seed(seed)`, shuffling,
  flips and jitter come from one `numpy` generator seeded with `seed`, the thread count can be
  fixed, and `torch.use_deterministic_algorithms(True)` is on while training (warn-only, since
  some CUDA kernels have no deterministic version). Same seed, same data, same machine and
  thread count -> the same weights and metrics.
- Progress after every step (`TrainProgress`) and cancellation between steps (`should_cancel`,
  a callable or `threading.Event`); a cancelled run raises `core.progress.Cancelled`.
- Inside a torchrun process group (`training.distributed.world()`), the same loop runs as DDP:
  every rank draws the same global batches, computes its slice through
  `distributed.DistributedLoss`, encodes only its share of a frozen backbone's tokens, and
  `predict_pairs` shards and gathers. Without a process group nothing of that runs.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

from microau_gui.core.errors import UserError
from microau_gui.face.motion import flow_image
from microau_gui.model.config import MicroAUConfig
from microau_gui.model.device import autocast_for
from microau_gui.model.losses import cooccurrence_prior, positive_class_weights
from microau_gui.model.network import MicroAUCLIP, PairBatch, PairTokens
from microau_gui.training import distributed
from microau_gui.training.augment import flip_pair, jitter_pair
from microau_gui.core.progress import check_cancel
from microau_gui.pairs.samples import PairSample, au_labels, sample_masks


@dataclass(frozen=True)
class TrainSettings:
    """How a model is optimised. Saved in the model card's training settings."""

    epochs: int = 60  # passes over the training pairs
    batch_size: int = 16  # pairs per optimiser step
    lr: float = 1e-3  # peak learning rate of the heads (PTA, GDA, fusion, temperature)
    backbone_lr_scale: float = 0.5  # backbone learning rate = lr * this (only blocks that train)
    weight_decay: float = 0.05  # AdamW decoupled weight decay on weight matrices
    warmup_fraction: float = 0.1  # share of all steps spent warming the learning rate up
    flip: bool = True  # random horizontal flip of the whole pair (p = 1/2)
    colour_jitter: float = 0.1  # max relative gain change of the crops (offset half of it)
    balanced: bool = False  # draw pairs with rare AUs more often (with replacement)
    grad_clip: float = 1.0  # max gradient norm
    dropout_masks: str = "torch"  # "torch": torch's stream; "per-row": keyed per row (distributed runs)
    seed: int = 0  # model init, shuffling, flips, jitter
    threads: int | None = None  # torch CPU threads while training; None = leave as is

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserError(f"--epochs {self.epochs}: train for at least 1 epoch")
        if self.batch_size < 1:
            raise UserError(f"batch size {self.batch_size}: use at least 1")
        if not self.lr > 0:
            raise UserError(f"learning rate {self.lr}: use a positive value")
        if self.dropout_masks not in ("torch", "per-row"):
            raise UserError(f"dropout masks {self.dropout_masks!r}: use torch or per-row")
        if self.threads is not None and self.threads < 1:
            raise UserError(f"--threads {self.threads}: use at least 1")

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class TrainProgress:
    """Reported after every optimiser step."""

    stage: str  # what is being trained, e.g. "test 02" (a LOSO fold) or "all subjects"
    step: int  # steps done in this stage
    n_steps: int  # steps this stage will take
    epoch: int  # 1-based epoch of the step
    n_epochs: int
    loss: float  # total loss of the step


Progress = Callable[[TrainProgress], None]
# uint8 images per kind ("target", "reference", "flow") `(N, O, S, S, 3)` -> tokens `(N, O, P, D)`
TokenSource = Callable[[MicroAUCLIP, dict[str, np.ndarray]], dict[str, torch.Tensor]]
EpochEnd = Callable[[int, float, MicroAUCLIP], None]  # (1-based epoch, mean loss, model in eval mode)
# pairs -> bool (N, n_au): which labels are known (the pair's dataset codes the AU)
KnownLabels = Callable[[Sequence[PairSample]], np.ndarray]


@dataclass(frozen=True, eq=False)
class TrainResult:
    model: MicroAUCLIP  # trained, in eval mode
    seconds: float  # wall time of the optimisation (preparing arrays included)
    epoch_losses: tuple[float, ...]  # mean total loss per epoch
    n_pairs: int  # training pairs


@dataclass(frozen=True, eq=False)
class Predictions:
    probs: np.ndarray  # (N, n_au) float64 sigmoid outputs
    au_features: np.ndarray  # (N, n_au, D) float32 unit-norm text-aligned AU features
    pta: np.ndarray | None = None  # (N, n_au, P) float32 PTA maps, when asked for (distillation)


@contextlib.contextmanager
def deterministic(seed: int, threads: int | None = None):
    """Seed torch, fix the thread count and turn deterministic algorithms on, restoring after."""
    previous = (torch.are_deterministic_algorithms_enabled(),
                torch.is_deterministic_algorithms_warn_only_enabled(), torch.get_num_threads())
    if threads is not None:
        torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
        torch.set_num_threads(previous[2])


def build_model(config: MicroAUConfig, seed: int = 0) -> MicroAUCLIP:
    """A fresh network, its random initialisation fixed by `seed`."""
    torch.manual_seed(seed)
    return MicroAUCLIP(config)


class _PairArrays:
    """The model inputs of every pair in every orientation, ready to index: (N, O, ...)."""

    def __init__(self, model: MicroAUCLIP, pairs: Sequence[PairSample], flip: bool):
        size, grid, vocab = model.image_size, model.grid_size, model.vocab
        wrong = [p.sample.key for p in pairs if p.size != size]
        if wrong:
            raise ValueError(f"pairs were prepared at another size than the model's {size} px "
                             f"(e.g. {wrong[0]}); prepare them with PrepSettings(size={size})")
        views = [list(pairs)]
        if flip:
            views.append([flip_pair(p) for p in pairs])
        config = model.config

        def stack(get) -> np.ndarray:
            return np.stack([np.stack([get(p) for p in view]) for view in views], axis=1)

        self.n_orient = len(views)
        self.target = stack(lambda p: p.target) if config.needs_target else None  # (N, O, S, S, 3)
        self.reference = stack(lambda p: p.reference) if config.needs_reference else None
        self.flow = stack(lambda p: flow_image(p.flow)) if config.needs_flow else None
        self.masks = torch.from_numpy(stack(lambda p: sample_masks(p.xy_crop, size, grid, vocab)))  # (N, O, n_au, P)
        self.labels = torch.from_numpy(
            np.stack([au_labels(p.sample.aus, vocab) for p in pairs]).astype(np.float32))  # (N, n_au)
        self.known: torch.Tensor | None = None  # bool (N, n_au) known labels; None: all known

    def __len__(self) -> int:
        return int(self.masks.shape[0])

    def images(self) -> dict[str, np.ndarray]:
        """The uint8 images the backbone encodes, per kind, `(N, O, S, S, 3)` (flow rendered)."""
        kinds = (("target", self.target), ("reference", self.reference), ("flow", self.flow))
        return {name: value for name, value in kinds if value is not None}

    def batch(self, model: MicroAUCLIP, idx: np.ndarray, orient: np.ndarray,
              rng: np.random.Generator | None, jitter: float, rows: np.ndarray | None = None) -> PairBatch:
        """Normalised images of pairs `idx` in orientations `orient`, jittered when `rng` is given.

        rows: keep only these positions of `idx` (a distributed rank's slice). The jitter of every
        row is still drawn, so `rng` advances exactly as in one process.
        """
        target = None if self.target is None else self.target[idx, orient]  # (B, S, S, 3)
        reference = None if self.reference is None else self.reference[idx, orient]
        if rng is not None and jitter > 0 and target is not None:
            target = target.copy()
            reference = None if reference is None else reference.copy()
            for row in range(len(idx)):
                ref_row = reference[row] if reference is not None else target[row]
                new_ref, new_target = jitter_pair(ref_row, target[row], rng, jitter)
                target[row] = new_target
                if reference is not None:
                    reference[row] = new_ref
        if rows is not None:
            idx, orient = idx[rows], orient[rows]
            target = None if target is None else target[rows]  # (b, S, S, 3)
            reference = None if reference is None else reference[rows]
        return PairBatch(
            masks=self.masks[torch.from_numpy(idx), torch.from_numpy(orient)].to(model.log_tau.device),
            target=None if target is None else model.prepare_images(target),
            reference=None if reference is None else model.prepare_images(reference),
            flow=None if self.flow is None else model.prepare_images(self.flow[idx, orient]),
        )


def _token_cache(model: MicroAUCLIP, arrays: _PairArrays, chunk: int = 32,
                 lo: int = 0, hi: int | None = None) -> dict[str, torch.Tensor]:
    """Backbone tokens `(hi - lo, O, P, D)` per image kind of pairs lo..hi (default all), for a
    frozen backbone."""
    parts: dict[str, list[torch.Tensor]] = {}
    n = len(arrays) if hi is None else hi
    model.eval()
    with torch.no_grad(), autocast_for(model.log_tau.device):
        for orient in range(arrays.n_orient):
            for start in range(lo, n, chunk):
                idx = np.arange(start, min(n, start + chunk))
                tokens = model.encode_pair(arrays.batch(model, idx, np.full(len(idx), orient), None, 0.0))
                for name in ("target", "reference", "flow"):
                    value = getattr(tokens, name)
                    if value is not None:
                        parts.setdefault(f"{name}:{orient}", []).append(value.float())
    cache = {}
    empty = torch.zeros((0, model.n_patches, model.embed_dim), device=model.log_tau.device)  # an empty share
    for name in model.config.image_kinds:
        per_orient = [torch.cat(parts.get(f"{name}:{o}", [empty])) for o in range(arrays.n_orient)]
        cache[name] = torch.stack(per_orient, dim=1)  # (N, O, P, D)
    return cache


def _param_groups(model: MicroAUCLIP, settings: TrainSettings) -> list[dict]:
    groups: dict[tuple[bool, bool], list[torch.nn.Parameter]] = {}
    backbone_ids = {id(p) for p in model.backbone.parameters()}
    for param in model.parameters():
        if not param.requires_grad:
            continue
        key = (id(param) in backbone_ids, param.ndim >= 2)
        groups.setdefault(key, []).append(param)
    out = []
    for (is_backbone, decays), params in groups.items():
        lr = settings.lr * (settings.backbone_lr_scale if is_backbone else 1.0)
        out.append({"params": params, "lr": lr, "weight_decay": settings.weight_decay if decays else 0.0})
    return out


def _cosine_with_warmup(n_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    warmup = max(1, int(round(warmup_fraction * n_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, n_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def masked_prior(labels: np.ndarray, known: np.ndarray, laplace: float) -> torch.Tensor:
    """`losses.cooccurrence_prior` from known labels only: P(AU_j | AU_i) counts, for each pair
    (i, j), only the samples whose dataset codes AU j. Equal to the unmasked prior when every
    label is known."""
    y = torch.from_numpy((labels > 0) & known).double()  # (N, n_au), unknown counts as no positive
    m = torch.from_numpy(known).double()
    both = y.T @ y  # (n_au, n_au): i and j both active
    active = y.T @ m  # (n_au, n_au): i active and j coded
    conditional = (both + laplace) / (active + 2 * laplace).clamp_min(1e-8)
    row_sums = conditional.sum(dim=1, keepdim=True)
    prior = torch.where(row_sums > 0, conditional / row_sums.clamp_min(1e-8), 1.0 / labels.shape[1])
    return prior.to(torch.float32)


def masked_pos_weight(labels: np.ndarray, known: np.ndarray, cap: float) -> torch.Tensor:
    """`losses.positive_class_weights` counting, per AU, the samples that code it only."""
    n_pos = ((labels > 0) & known).sum(axis=0)
    n_neg = ((labels <= 0) & known).sum(axis=0)
    return torch.from_numpy((n_neg + 1) / (n_pos + 1)).clamp(max=cap).to(torch.float32)  # (n_au,)


def _epoch_order(rng: np.random.Generator, labels: np.ndarray, balanced: bool) -> np.ndarray:
    n = len(labels)
    if not balanced:
        return rng.permutation(n)
    frequency = labels.mean(axis=0).clip(1.0 / n, None)  # (n_au,)
    weight = np.where(labels > 0, 1.0 / frequency, 0.0).max(axis=1)  # (N,) rarest AU of the pair
    weight = np.where(weight > 0, weight, 1.0 / max(frequency.mean(), 1.0 / n))
    return rng.choice(n, size=n, replace=True, p=weight / weight.sum())


def train_model(model_or_config: MicroAUCLIP | MicroAUConfig, pairs: Sequence[PairSample],
                settings: TrainSettings = TrainSettings(), *, device: torch.device | str = "cpu",
                stage: str = "all subjects", progress: Progress | None = None,
                should_cancel=None, token_source: TokenSource | None = None,
                on_epoch_end: EpochEnd | None = None, known: KnownLabels | None = None) -> TrainResult:
    """Train a network (a fresh one built from a config, or the given one, e.g. for fine-tuning)
    on `pairs`, which must all belong to the training split.

    known: which labels of `pairs` are known (`KnownLabels`; pooled sets with a union
    vocabulary): the prior, the class weights and the loss then use the known labels only.

    token_source: where a frozen backbone's tokens come from (default: computed here, once).
    on_epoch_end: called after every epoch, see the module docstring.
    """
    if not pairs:
        raise UserError("no training pairs; check the dataset and the selected subjects")
    started = time.perf_counter()
    device = torch.device(device)
    with deterministic(settings.seed, settings.threads):
        if isinstance(model_or_config, MicroAUConfig):
            model = build_model(model_or_config, settings.seed)
        else:
            model = model_or_config
        model.to(device)
        arrays = _PairArrays(model, pairs, settings.flip)
        labels_np = arrays.labels.numpy()
        if known is None:
            model.set_dependency_prior(cooccurrence_prior(labels_np, laplace=model.config.prior_laplace))
            pos_weight = positive_class_weights(labels_np, cap=model.config.pos_weight_cap).to(device)
        else:
            known_np = np.asarray(known(pairs), dtype=bool)  # (N, n_au)
            arrays.known = torch.from_numpy(known_np)
            model.set_dependency_prior(masked_prior(labels_np, known_np, model.config.prior_laplace))
            pos_weight = masked_pos_weight(labels_np, known_np, model.config.pos_weight_cap).to(device)
        world = distributed.world()
        if model.backbone_trainable:
            tokens = None
        elif token_source is not None:
            tokens = distributed.sharded_tokens(lambda images: token_source(model, images), arrays.images())
        else:
            tokens = _shared_token_cache(model, arrays)

        groups = _param_groups(model, settings)
        optimiser = torch.optim.AdamW(groups, lr=settings.lr, betas=(0.9, 0.98), eps=1e-6)
        steps_per_epoch = math.ceil(len(arrays) / settings.batch_size)
        n_steps = steps_per_epoch * settings.epochs
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimiser, _cosine_with_warmup(n_steps, settings.warmup_fraction))
        params = [p for g in groups for p in g["params"]]
        rng = np.random.default_rng(settings.seed)
        sampler = distributed.FoldShardSampler(len(arrays), settings.batch_size,
                                               world.rank if world else 0, world.size if world else 1)
        epoch_losses = []
        step = 0
        per_row = settings.dropout_masks == "per-row"
        with distributed.row_keyed_dropout(model) if per_row else contextlib.nullcontext() as row_keys:
            shared = None
            if world is not None:
                shared = torch.nn.parallel.DistributedDataParallel(
                    distributed.DistributedLoss(model, pos_weight, world.size),
                    device_ids=[device] if device.type == "cuda" else None)
            model.train()
            for epoch in range(settings.epochs):
                order = _epoch_order(rng, labels_np, settings.balanced)
                losses = []
                for shard in sampler.steps(order):
                    check_cancel(should_cancel)
                    idx = shard.idx
                    orient = rng.integers(0, arrays.n_orient, len(idx))
                    if shared is None:
                        if row_keys is not None:
                            row_keys.set([distributed.row_key(settings.seed, step, b) for b in range(len(idx))])
                        loss = _plain_loss(model, arrays, tokens, idx, orient, rng, settings, pos_weight, device)
                        backward, reported = loss, float(loss.detach())
                    else:
                        backward, reported = _shard_loss(shared, model, arrays, tokens, idx, orient, shard.rows,
                                                         rng, settings, step, row_keys, device)
                    optimiser.zero_grad(set_to_none=True)
                    backward.backward()
                    if settings.grad_clip > 0:
                        torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                    optimiser.step()
                    scheduler.step()
                    step += 1
                    losses.append(reported)
                    if progress is not None:
                        progress(TrainProgress(stage, step, n_steps, epoch + 1, settings.epochs, losses[-1]))
                epoch_losses.append(float(np.mean(losses)))
                if on_epoch_end is not None:
                    model.eval()
                    on_epoch_end(epoch + 1, epoch_losses[-1], model)
                    model.train()
        model.eval()
    return TrainResult(model=model, seconds=time.perf_counter() - started,
                       epoch_losses=tuple(epoch_losses), n_pairs=len(pairs))


def _shared_token_cache(model: MicroAUCLIP, arrays: _PairArrays) -> dict[str, torch.Tensor]:
    """`_token_cache` of every pair; in a distributed run each rank encodes only its share."""
    world = distributed.world()
    if world is None:
        return _token_cache(model, arrays)
    lo, hi = distributed.shard_range(len(arrays), world.rank, world.size)
    mine = _token_cache(model, arrays, lo=lo, hi=hi)
    return {name: distributed.gather_rows(value, len(arrays)) for name, value in mine.items()}


def _plain_loss(model: MicroAUCLIP, arrays: _PairArrays, tokens, idx: np.ndarray, orient: np.ndarray,
                rng: np.random.Generator, settings: TrainSettings, pos_weight: torch.Tensor,
                device: torch.device) -> torch.Tensor:
    """The total loss of one batch in one process."""
    idx_t, orient_t = torch.from_numpy(idx), torch.from_numpy(orient)
    targets = arrays.labels[idx_t].to(device)  # (B, n_au)
    known = None if arrays.known is None else arrays.known[idx_t].to(device)  # (B, n_au)
    with autocast_for(device):
        if tokens is None:
            output = model(arrays.batch(model, idx, orient, rng, settings.colour_jitter))
        else:
            cached = PairTokens(**{name: value[idx_t, orient_t].to(device) for name, value in tokens.items()})
            output = model.forward_tokens(cached, arrays.masks[idx_t, orient_t].to(device))
        return model.loss(output, targets, pos_weight, mask=known).total


def _shard_loss(shared, model: MicroAUCLIP, arrays: _PairArrays, tokens, idx: np.ndarray,
                orient: np.ndarray, rows: np.ndarray, rng: np.random.Generator,
                settings: TrainSettings, step: int, row_keys, device: torch.device) -> tuple[torch.Tensor, float]:
    """This rank's share of a global batch's loss through DDP, and the global batch's loss.

    An empty share (a last batch smaller than the world) runs row 0 at weight 0.
    """
    n_real = len(rows)
    use = rows if n_real else np.zeros(1, np.int64)
    if row_keys is not None:
        row_keys.set([distributed.row_key(settings.seed, step, int(b)) for b in use])
    idx_t, orient_t = torch.from_numpy(idx[use]), torch.from_numpy(orient[use])
    targets = arrays.labels[idx_t].to(device)  # (b, n_au)
    if arrays.known is None:
        known, share = None, n_real / len(idx)
    else:  # the slice's share of the global batch's known labels
        known = arrays.known[idx_t].to(device)  # (b, n_au)
        share = float(known.sum()) / float(arrays.known[torch.from_numpy(idx)].sum()) if n_real else 0.0
    if tokens is None:
        batch = arrays.batch(model, idx, orient, rng, settings.colour_jitter, rows=use)

        def compute(net):
            return net(batch)
    else:
        cached = PairTokens(**{name: value[idx_t, orient_t].to(device) for name, value in tokens.items()})
        masks = arrays.masks[idx_t, orient_t].to(device)  # (b, n_au, P)

        def compute(net):
            return net.forward_tokens(cached, masks)
    with autocast_for(device):
        backward, reported = shared(compute, targets, known, share, n_real, len(idx))
    return backward, float(reported)


def predict_pairs(model: MicroAUCLIP, pairs: Sequence[PairSample], *, batch_size: int = 32,
                  should_cancel=None, with_pta: bool = False, progress=None) -> Predictions:
    """Probabilities and AU features (and the PTA maps, `with_pta`) of prepared pairs (no
    augmentation), on the model's device. progress(done, total) after every batch.

    In a distributed run each rank predicts its share of the pairs and every rank gets all rows,
    in pair order (`distributed.gather_rows`).
    """
    world = distributed.world()
    if world is None:
        return _predict(model, pairs, batch_size, should_cancel, with_pta, progress)
    lo, hi = distributed.shard_range(len(pairs), world.rank, world.size)
    mine = _predict(model, list(pairs)[lo:hi], batch_size, should_cancel, with_pta, progress)
    return Predictions(distributed.gather_rows(torch.from_numpy(mine.probs), len(pairs)).numpy(),
                       distributed.gather_rows(torch.from_numpy(mine.au_features), len(pairs)).numpy(),
                       distributed.gather_rows(torch.from_numpy(mine.pta), len(pairs)).numpy()
                       if with_pta else None)


def _predict(model: MicroAUCLIP, pairs: Sequence[PairSample], batch_size: int, should_cancel,
             with_pta: bool = False, progress=None) -> Predictions:
    n_au, dim = model.config.n_au, model.embed_dim
    if not pairs:
        return Predictions(np.zeros((0, n_au)), np.zeros((0, n_au, dim), np.float32),
                           np.zeros((0, n_au, model.grid_size ** 2), np.float32) if with_pta else None)
    arrays = _PairArrays(model, pairs, flip=False)
    probs, features, maps = [], [], []
    model.eval()
    with torch.no_grad(), autocast_for(model.log_tau.device):
        for start in range(0, len(arrays), batch_size):
            check_cancel(should_cancel)
            idx = np.arange(start, min(len(arrays), start + batch_size))
            output = model(arrays.batch(model, idx, np.zeros(len(idx), np.int64), None, 0.0))
            probs.append(output.probs.float().cpu().numpy().astype(np.float64))
            features.append(output.au_features.float().cpu().numpy())
            if with_pta:
                maps.append(output.pta_attention.float().cpu().numpy())
            if progress is not None:
                progress(int(idx[-1]) + 1, len(arrays))
    return Predictions(np.concatenate(probs), np.concatenate(features),
                       np.concatenate(maps) if with_pta else None)
