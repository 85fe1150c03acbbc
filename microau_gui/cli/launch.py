"""`train ... --nproc N` and `finetune ... --nproc N`: the same command in N processes under torchrun.

Owns: `add_nproc_argument`, `relaunch`, `worker`. May import every layer.

The choice, and why: the parent calls torchrun's own launcher, the elastic launch API
(`torch.distributed.launcher.api.elastic_launch`, what `python -m torch.distributed.run` runs),
in-process, with the Python interpreter as a *binary* entry point. Each worker runs
`python -m microau_gui.cli COMMAND ARGS...` with `--nproc` left out, which is exactly the command
a user runs after `torchrun` on several machines (README, "Training on several processes or
machines"), so one code path serves both. Calling the API rather than a `torchrun` subprocess
lets the parent turn a failed worker into our one-line error and exit code instead of torchrun's
multi-line `ChildFailedError` report, while the workers' output still goes straight to the
terminal. Rendezvous is c10d on localhost with a free port (as `torchrun --standalone`), with no
restarts (a failed fold is bad input or a bug, not a lost node); torchrun's log folder is a
temporary one, removed afterwards.

Limits: `--nproc` must be at least 1 and at most the usable CPU cores (CPU runs) or the visible
GPUs (CUDA runs); more processes than cores only share them. Each worker gets
`OMP_NUM_THREADS = cores // N` unless `--threads` or the environment says otherwise.
The workers join the process group in `worker()` (gloo on CPU, NCCL on GPU; see
`training.distributed`); only rank 0 prints, draws progress and writes reports and checkpoints.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import uuid

from microau_gui.core.cores import usable_cores
from microau_gui.core.errors import UserError

EXIT_USER_ERROR = 2  # what a worker returns for bad input (cli.EXIT_USER_ERROR); it already said why


def add_nproc_argument(parser) -> None:
    parser.add_argument("--nproc", type=int, default=None, metavar="N",
                        help="train in N processes with DistributedDataParallel under torchrun "
                        "(gloo on CPU, NCCL on GPU); the same metrics as 1 process within the "
                        "README's tolerance. On several machines run torchrun yourself (README)")


def _check_nproc(nproc: int, device: str) -> bool:
    """Refuse a process count that cannot help; returns True when the workers use CUDA."""
    from microau_gui.training import distributed

    if distributed.launched_by_torchrun():
        raise UserError("--nproc inside torchrun: leave it out, torchrun's --nproc-per-node sets "
                        "the number of processes")
    if nproc < 1:
        raise UserError(f"--nproc {nproc}: use at least 1 process")
    from microau_gui.model.device import pick_device

    cuda = pick_device(device).type == "cuda"
    if cuda:
        import torch

        limit, what = torch.cuda.device_count(), "GPUs"
    else:
        limit, what = usable_cores(), "usable CPU cores"
    if nproc > limit:
        raise UserError(f"--nproc {nproc}: this machine has {limit} {what}; start at most {limit} "
                        "processes (for more, run torchrun on several machines, see the README)")
    return cuda


def _without_nproc(argv: list[str]) -> list[str]:
    out, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == "--nproc":
            skip = True
        elif not token.startswith("--nproc="):
            out.append(token)
    return out


def relaunch(args, nproc: int) -> int:
    """Run this command line again in `nproc` torchrun workers; returns the exit code."""
    from torch.distributed.elastic.multiprocessing import DefaultLogsSpecs
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    cuda = _check_nproc(nproc, args.device)
    argv = _without_nproc(list(args._argv))
    threads = None  # the workers' OMP_NUM_THREADS, set only while they start (they inherit it)
    if not cuda and getattr(args, "threads", None) is None and "OMP_NUM_THREADS" not in os.environ:
        threads = str(max(1, usable_cores() // nproc))
    for name in ("torch.distributed.elastic", "torch.distributed.launcher"):
        # the agent's own log lines (its start, stopping the other workers after a failure): the
        # workers print their errors themselves and a failure becomes our one line below
        logging.getLogger(name).setLevel(logging.CRITICAL)
    with tempfile.TemporaryDirectory(prefix="microau-torchrun-") as logs:
        config = LaunchConfig(min_nodes=1, max_nodes=1, nproc_per_node=nproc, run_id=str(uuid.uuid4()),
                              rdzv_backend="c10d", rdzv_endpoint="localhost:0", max_restarts=0,
                              logs_specs=DefaultLogsSpecs(log_dir=logs))
        if threads is not None:
            os.environ["OMP_NUM_THREADS"] = threads
        try:
            elastic_launch(config, sys.executable)("-m", "microau_gui.cli", *argv)
        except ChildFailedError as err:
            rank, failure = err.get_first_failure()
            code = failure.exitcode
            if code == EXIT_USER_ERROR:
                return code  # rank 0 printed the one-line reason
            raise UserError(f"training process {rank} of {nproc} failed (exit code {code}); "
                            "its messages are above") from None
        finally:
            if threads is not None:
                del os.environ["OMP_NUM_THREADS"]
    return 0


@contextlib.contextmanager
def worker(device: str):
    """Inside a torchrun worker: join the process group for `device` and yield its `World` (rank
    0 prints; the others' standard output is discarded). Outside torchrun: yield None."""
    from microau_gui.model.device import pick_device
    from microau_gui.training import distributed

    if not distributed.launched_by_torchrun():
        yield None
        return
    world = distributed.init_from_env(pick_device(device))
    stdout = sys.stdout
    quiet = None if world.rank == 0 else open(os.devnull, "w")
    if quiet is not None:
        sys.stdout = quiet
    try:
        yield world
    finally:
        if quiet is not None:
            sys.stdout = stdout
            quiet.close()
        distributed.shutdown()
