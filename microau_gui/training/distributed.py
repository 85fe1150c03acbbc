"""Data-parallel training across processes (torchrun + DistributedDataParallel), one fold at a time.

Owns: `World`, `launched_by_torchrun`, `init_from_env`, `shutdown`, `world`, `is_main`,
`broadcast_object`, `main_writes`, `sum_int`, `shard_range`, `FoldShardSampler`,
`gather_rows`, `sharded_tokens`, `RowKeyedDropout`, `row_key`, `row_keyed_dropout`,
`DistributedLoss`. May import model, core and training's own modules
(torch, numpy); no Qt, no CLI.

How a distributed run is laid out (our specification; issue #19):
- **Processes.** Every rank runs the same command (`torchrun ... main.py train ...`, or `train
  --nproc N`, which starts torchrun itself: `cli/launch.py`). `init_from_env` joins the process
  group torchrun describes in the environment: gloo on the CPU, NCCL on CUDA (one GPU per local
  rank). Every rank imports the dataset and prepares its pairs from the shared pair cache.
- **Folds stay whole.** Folds are trained one after the other, all ranks together: a fold's
  model is one DDP model. `FoldShardSampler` is built from that fold's *training* pairs only
  (`experiment.cross_validate` splits by subject before training), so the held-out subject's
  pairs never enter any rank's batches. Every rank draws the same global epoch order and
  orientations from the same seeded generator (as one process does); each global batch is then
  cut into contiguous per-rank slices. The global batch size is the one given (`--batch-size`),
  not multiplied by the number of ranks.
- **Same loss, same gradient as one process.** Each rank's loss is its slice's BCE and MiAUCL
  weighted by (slice size / global batch) and scaled by the world size, because DDP averages
  gradients over ranks. GDLoss compares the prior with the *batch*-mean GDA attention, which no
  rank can compute alone: the per-rank attention sums are all-reduced (without gradient) and
  each rank differentiates through its own share. A rank whose slice is empty (a last batch
  smaller than the world) runs one row at weight 0, so DDP's gradient reduction still sees it.
- **Dropout.** `torch`'s dropout draws its masks from one stream per process, so a row's mask
  would depend on how the batch was split. Distributed runs (`TrainSettings.dropout_masks =
  "per-row"`) replace the heads' `nn.Dropout`s by `RowKeyedDropout`, whose mask for a row is
  drawn from a generator keyed by (seed, step, the row's position in the global batch, call).
  So 1 process and N processes draw the same masks. Runs without `--nproc` keep torch's stream
  (and so reproduce the committed reports); the card records which.
- **Backbone tokens** (frozen backbone): each rank encodes only its contiguous share of the
  pairs (through the persistent `TokenCache` when one is used, so each rank writes only its
  share of entries), then the shares are all-gathered so every rank holds every token. No
  image is encoded twice, and no rank waits for another to build the whole cache.
- **Predictions** of held-out pairs are sharded the same way and gathered in pair order; every
  rank then holds the same scores and metrics. Reports, printing and checkpoints are rank 0's
  (checkpoints through the atomic writers; the other ranks wait for rank 0's card, `main_writes`).

Why N processes are not bit-identical to 1 (the tolerance is stated in the README): the summed
gradient of two half batches is added in another order than one batch's, the GEMMs run on other
shapes (other blocking), and the attention mean is sum / B instead of a mean; these float32
rounding differences (~1e-7 relative per step) grow slowly over training. Measured and tested:
`tests/test_training_distributed.py`.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from microau_gui.core.errors import UserError
from microau_gui.model.losses import detection_bce, gd_loss, miaucl


@dataclass(frozen=True)
class World:
    """This process's place in the process group."""

    rank: int
    size: int
    local_rank: int
    device: torch.device  # the device this rank trains on
    backend: str  # "gloo" or "nccl"


_WORLD: World | None = None
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun() -> bool:
    """True inside a process that torchrun (or `train --nproc`) started."""
    return all(name in os.environ for name in _ENV)


def init_from_env(device: torch.device) -> World:
    """Join torchrun's process group: gloo for `device` cpu, NCCL (one GPU per local rank) for cuda."""
    global _WORLD
    rank, size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ["LOCAL_RANK"])
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise UserError(f"local rank {local_rank} has no GPU: this machine has "
                            f"{torch.cuda.device_count()}; start at most that many processes per node")
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        backend = "nccl"
    else:
        backend = "gloo"
    dist.init_process_group(backend=backend, device_id=device if backend == "nccl" else None)
    _WORLD = World(rank, size, local_rank, device, backend)
    return _WORLD


def shutdown() -> None:
    global _WORLD
    if dist.is_initialized():
        dist.destroy_process_group()
    _WORLD = None


def world() -> World | None:
    """The process group this process trains in, or None for an ordinary single-process run."""
    return _WORLD


def is_main() -> bool:
    """Rank 0, or not distributed: the process that prints, reports and writes files."""
    return _WORLD is None or _WORLD.rank == 0


def broadcast_object(value):
    """Rank 0's `value` on every rank (itself when not distributed)."""
    if _WORLD is None:
        return value
    box = [value if _WORLD.rank == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def main_writes(write: Callable[[], object]):
    """Run `write` on rank 0 only (e.g. saving a checkpoint); every rank gets its result after
    rank 0 is done. An error on rank 0 is raised there; torchrun then stops the waiting ranks."""
    if _WORLD is None:
        return write()
    result = write() if _WORLD.rank == 0 else None
    return broadcast_object(result)


def sum_int(value: int) -> int:
    """`value` summed over every rank (itself when not distributed)."""
    if _WORLD is None:
        return value
    total = torch.tensor([value], dtype=torch.int64, device=_WORLD.device)
    dist.all_reduce(total)
    return int(total.item())


def shard_range(n: int, rank: int, size: int) -> tuple[int, int]:
    """[start, stop) of rank's contiguous share of n items; shares differ by at most one item."""
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


@dataclass(frozen=True)
class StepShard:
    """One optimiser step as one rank sees it."""

    idx: np.ndarray  # (B,) the global batch: indices into the fold's training pairs
    rows: np.ndarray  # (b,) positions in `idx` this rank computes (contiguous; may be empty)


class FoldShardSampler:
    """Cuts every global batch of one fold's training pairs into per-rank slices.

    Built from the number of the fold's *training* pairs: it can only hand out indices into
    them, so a held-out subject never reaches a rank. The epoch order comes from the caller
    (the same seeded generator on every rank), so all ranks agree on every global batch.
    """

    def __init__(self, n_train: int, batch_size: int, rank: int = 0, size: int = 1):
        if not 0 <= rank < size:
            raise ValueError(f"rank {rank} outside a world of {size}")
        self.n_train, self.batch_size, self.rank, self.size = n_train, batch_size, rank, size

    def steps(self, order: np.ndarray) -> Iterator[StepShard]:
        """The steps of one epoch in `order` (a permutation, or a balanced draw, of the pairs)."""
        if len(order) and (order.min() < 0 or order.max() >= self.n_train):
            raise ValueError("the epoch order names pairs outside the fold's training set")
        for start in range(0, len(order), self.batch_size):
            idx = order[start:start + self.batch_size]
            lo, hi = shard_range(len(idx), self.rank, self.size)
            yield StepShard(idx, np.arange(lo, hi))


def _pad_to(tensor: torch.Tensor, n: int) -> torch.Tensor:
    if tensor.shape[0] == n:
        return tensor
    pad = torch.zeros((n - tensor.shape[0],) + tuple(tensor.shape[1:]), dtype=tensor.dtype,
                      device=tensor.device)
    return torch.cat([tensor, pad])


def gather_rows(part: torch.Tensor, n: int) -> torch.Tensor:
    """Concatenate every rank's `shard_range(n)` rows in rank order: `(n, ...)` on every rank.

    gloo and NCCL gather equal shapes only, so shares are padded to the largest and cut again.
    """
    w = _WORLD
    if w is None:
        return part
    largest = shard_range(n, 0, w.size)[1]
    moved = _pad_to(part.to(w.device).contiguous(), largest)
    pieces = [torch.empty_like(moved) for _ in range(w.size)]
    dist.all_gather(pieces, moved)
    out = [piece[:hi - lo] for piece, (lo, hi) in
           zip(pieces, (shard_range(n, r, w.size) for r in range(w.size)))]
    return torch.cat(out).to(part.device)


def sharded_tokens(encode: Callable[[dict[str, np.ndarray]], dict[str, torch.Tensor]],
                   images: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Tokens of every image, each encoded by one rank only (see the module docstring).

    `encode` maps uint8 images per kind `(n, O, S, S, 3)` to tokens `(n, O, P, D)`.
    """
    w = _WORLD
    if w is None:
        return encode(images)
    n = len(next(iter(images.values())))
    lo, hi = shard_range(n, w.rank, w.size)
    mine = encode({name: stack[lo:hi] for name, stack in images.items()})
    return {name: gather_rows(value, n) for name, value in mine.items()}


# -- dropout that does not depend on how a batch is split ------------------------------------------

class _RowKeys:
    """The keys of the rows in the next forward, shared by every `RowKeyedDropout` of a model."""

    def __init__(self):
        self.keys: Sequence[int] = ()
        self.calls = 0

    def set(self, keys: Sequence[int]) -> None:
        self.keys = tuple(int(k) for k in keys)
        self.calls = 0


class RowKeyedDropout(nn.Module):
    """Inverted dropout whose mask for row b is drawn from a generator seeded by (key_b, call).

    `call` counts the dropout calls since the keys were set (the modules run in the same order on
    every rank), so a row meets the same masks whichever rank computes it.
    """

    def __init__(self, p: float, keys: _RowKeys):
        super().__init__()
        self.p = p
        self._keys = keys

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        keys = self._keys
        call = keys.calls
        keys.calls += 1
        if len(keys.keys) != x.shape[0]:
            raise RuntimeError(f"row-keyed dropout: {len(keys.keys)} keys for a batch of {x.shape[0]}")
        masks = []
        for key in keys.keys:
            seed = int(np.random.SeedSequence([key, call]).generate_state(1, np.uint64)[0]) >> 1
            generator = torch.Generator(device=x.device).manual_seed(seed)
            masks.append(torch.rand(x.shape[1:], generator=generator, device=x.device) >= self.p)
        mask = torch.stack(masks).to(x.dtype)  # (B, ...)
        return x * mask / (1.0 - self.p)


def row_key(seed: int, step: int, position: int) -> int:
    """Key of the row at `position` of the global batch of optimiser step `step`."""
    return int(np.random.SeedSequence([seed, step, position]).generate_state(1, np.uint64)[0]) >> 1


@contextlib.contextmanager
def row_keyed_dropout(model: nn.Module):
    """Swap every `nn.Dropout` (p > 0) of `model` for a `RowKeyedDropout` while training; yields
    the `_RowKeys` to set before each forward. The original modules are put back afterwards."""
    keys = _RowKeys()
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Dropout) and child.p > 0:
                replacement = RowKeyedDropout(child.p, keys)
                replacement.train(child.training)
                setattr(parent, name, replacement)
                swapped.append((parent, name, child))
    try:
        yield keys
    finally:
        for parent, name, child in swapped:
            child.train(getattr(parent, name).training)
            setattr(parent, name, child)


# -- the loss each rank differentiates -------------------------------------------------------------

class DistributedLoss(nn.Module):
    """The module DDP wraps: a rank's slice in, that rank's share of the global loss out.

    `forward(compute, targets, known, share, n_real, n_global)`: `compute(model)` runs the network
    on the slice and returns its `MicroAUOutput`; `known` is the slice's mask of known labels (or
    None); `share` the slice's part of the global batch's (known) labels, 0 for a padding row;
    `n_real` rows of it count out of the global batch's `n_global`. Returns (loss to
    backpropagate, the global batch's loss, the same on every rank).
    """

    def __init__(self, model: nn.Module, pos_weight: torch.Tensor, size: int):
        super().__init__()
        self.model = model
        self.pos_weight = pos_weight
        self.size = size

    def forward(self, compute, targets: torch.Tensor, known: torch.Tensor | None, share: float,
                n_real: int, n_global: int):
        model = self.model
        output = compute(model)
        config = model.config
        text_pos, text_neg = model.text_embeddings()
        local = share * (detection_bce(output.logits, targets, self.pos_weight, known)
                         + config.lambda_c * miaucl(output.au_features, targets, text_pos, text_neg,
                                                    model.tau.float(), known))
        total = local
        reported = local.detach().clone()
        dist.all_reduce(reported)
        if output.gda_used and config.lambda_g != 0:
            own = output.gda_attention.float().sum(dim=0) * (1.0 if n_real else 0.0)  # (n_au, n_au)
            everyone = own.detach().clone()
            dist.all_reduce(everyone)
            mean_attention = (own + (everyone - own.detach())) / n_global  # (n_au, n_au)
            dependency = gd_loss(mean_attention.unsqueeze(0), model.dependency_prior)
            total = total + config.lambda_g * dependency
            reported = reported + config.lambda_g * dependency.detach()
        return total * self.size, reported
