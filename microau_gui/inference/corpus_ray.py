"""Corpus analysis on Ray: the engine, the chunk workers, and the driver loop that hands chunks out.

Owns: `RayEngine`, `ChunkWorker`, `run_corpus`, `CorpusRun`. May import ray (the `cluster`
extra), inference (`corpus` for the engine-free pieces, `predictor`), torch and core; no Qt.
Nothing in gui or session imports this module (an import-linter contract keeps Ray out of them).

Why Ray, and why Ray for the local engine too (our decision):
- Ray is what a lab's cluster team already runs for GPU actor pools; `ray start --head` and
  `ray start --address` are the whole cluster set-up, and Ray places actors, restarts dead ones
  and retries failed tasks (`max_task_retries`, `retry_exceptions`), so we build no scheduler.
  Dask would serve CPU batch work as well, but has no equivalent of a GPU actor holding a loaded
  model, which is the unit here.
- `--engine local` starts Ray in-process with the machine's cores (`ray.init(num_cpus=N)`): no
  set-up for the user, and one code path, so retries, worker-held models and the fault hook
  behave on a laptop exactly as on a cluster, and the tests of the local engine test the cluster
  path. The price: Ray's start-up (about 6 s on 2 busy cores) and the `cluster` extra. A process
  pool would start faster but would need our own retries, worker life cycle and fault reporting,
  which is the scheduler the issue says not to build.

Workers (`ChunkWorker`, a Ray actor): each loads the model once in its constructor and analyses
any number of chunks with it (`inference.corpus.analyze_chunk`). One actor per CPU (1 torch
thread each, the thread count `analyze` uses by default, which also keeps the rows byte-equal),
or one per GPU (`num_gpus=1`) when the cluster has GPUs and `--device` allows. A failing chunk is
retried by Ray (`max_task_retries`, `retry_exceptions=True`) on its actor; a dead actor is
restarted once (`max_restarts=1`) with its task retried. A chunk whose tries are spent is
reported with its error, and the other chunks go on.

The driver (`run_corpus`) keeps one chunk in flight per worker, takes results as they come
(`ray.wait`), writes each chunk's rows into the run folder (`inference.corpus.CorpusOutput`),
merges predictions into the project when asked (`inference.corpus.ProjectMerge`: the one SQLite
writer), reports frames done to the progress callback and polls `should_cancel`.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import ray

from microau_gui.core.cores import usable_cores
from microau_gui.core.errors import UserError
from microau_gui.core.progress import Progress, check_cancel
from microau_gui.inference.corpus import (ChunkResult, ChunkTask, CorpusOutput, CorpusSettings, FaultHook,
                                          ProjectMerge, analyze_chunk, worker_name)

WAIT_S = 0.5  # how often the driver looks at should_cancel while chunks run
CONNECT_S = 5.0  # a cluster head that does not accept a TCP connection in this long is not there


@ray.remote
class ChunkWorker:
    """One worker process holding one loaded model (see the module docstring)."""

    def __init__(self, settings: CorpusSettings, fault_spec: str | None, threads: int = 1):
        import torch

        from microau_gui.inference.predictor import Predictor

        torch.set_num_threads(threads)
        self.settings = settings
        self.predictor = Predictor.from_checkpoint(settings.checkpoint, device=settings.device,
                                                   speed_mode=settings.speed,
                                                   check_batch_size=settings.batch_size)
        self.fault = FaultHook(fault_spec)
        self.hashes: dict[str, str] = {}

    def name(self) -> str:
        return worker_name()

    @ray.method(retry_exceptions=True)
    def analyze(self, task: ChunkTask) -> ChunkResult:
        self.fault.check(task)
        return analyze_chunk(self.predictor, task, self.settings, self.hashes)


class RayEngine:
    """Ray for one run: a private in-process instance (`local`), or a cluster joined at `address`
    ("auto": the one `ray start` started on this machine). An instance already initialised in
    this process (a test's, a notebook's) is used as it is and left running."""

    def __init__(self, kind: str = "local", address: str | None = None, workers: int | None = None):
        if kind not in ("local", "ray"):
            raise UserError(f"--engine {kind}: use local or ray")
        if kind == "local" and address:
            raise UserError("--address joins a cluster: use it with --engine ray")
        if workers is not None and workers < 1:
            raise UserError(f"--workers {workers}: use at least 1")
        self.kind, self.address, self.requested = kind, address, workers
        self._started = False

    def __enter__(self) -> "RayEngine":
        if self.kind == "ray" and self.address:
            self._check_reachable(self.address)
        if self.kind == "ray":
            _token_mode_if_token()
        if not ray.is_initialized():
            common = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.ERROR}
            try:
                if self.kind == "local":
                    # address="local": always a private instance; without it ray.init joins a
                    # cluster that `ray start` left on this machine (/tmp/ray/ray_current_cluster)
                    ray.init(address="local", num_cpus=self.requested or usable_cores(), **common)
                else:
                    ray.init(address=self.address or "auto", **common)
            except (ConnectionError, RuntimeError, ValueError) as err:
                where = self.address or "auto"
                raise UserError(f"--address {where}: no Ray cluster to join ({str(err).splitlines()[0]}); "
                                "start one with `ray start --head` or use --engine local") from None
            self._started = True
        return self

    @staticmethod
    def _check_reachable(address: str) -> None:
        """A one-line error at once for a head that does not answer: `ray.init` would retry for
        minutes first."""
        import socket

        host, _, port = address.removeprefix("ray://").rpartition(":")
        try:
            socket.create_connection((host or "127.0.0.1", int(port)), timeout=CONNECT_S).close()
        except ValueError:
            raise UserError(f"--address {address}: give HOST:PORT, e.g. 10.0.0.1:6379") from None
        except OSError as err:
            raise UserError(f"--address {address}: no Ray head answers there ({err.strerror or err}); "
                            "start one with `ray start --head` or use --engine local") from None

    def __exit__(self, *exc) -> None:
        if self._started:
            ray.shutdown()

    def device(self, wanted: str) -> str:
        """"cpu" or "cuda" for the workers: auto takes GPUs when the cluster has any."""
        gpus = ray.cluster_resources().get("GPU", 0)
        if wanted == "cuda" and gpus < 1:
            raise UserError("--device cuda: the Ray cluster has no GPU")
        if wanted not in ("auto", "cpu", "cuda"):
            raise UserError(f"--device {wanted}: use auto, cpu or cuda")
        return "cuda" if wanted == "cuda" or (wanted == "auto" and gpus >= 1) else "cpu"

    def n_workers(self, device: str) -> int:
        """One worker per GPU, or per CPU of the cluster, at most the number asked for."""
        resources = ray.cluster_resources()
        slots = int(resources.get("GPU", 0) if device == "cuda" else resources.get("CPU", 1))
        return max(1, min(slots, self.requested or slots))

    def describe(self, device: str, workers: int) -> dict:
        return {"kind": self.kind, "address": self.address, "workers": workers, "device": device,
                "ray": ray.__version__}


@dataclass
class CorpusRun:
    """What one run did."""

    n_chunks_run: int  # chunks analysed in this run (finished or failed)
    n_chunks_failed: int
    n_frames: int  # frames (rows) produced in this run
    seconds: float  # from the first chunk handed out (every worker ready) to the last result
    workers: tuple[str, ...]  # host:pid of the processes that analysed chunks
    startup_s: float = 0.0  # starting the workers and loading their models

    @property
    def frames_per_s(self) -> float:
        return self.n_frames / self.seconds if self.seconds > 0 else 0.0


def run_corpus(output: CorpusOutput, engine: RayEngine, *, workers: int, retries: int = 2,
               fault_spec: str | None = None, merge: ProjectMerge | None = None,
               progress: Progress | None = None, should_cancel: Callable[[], bool] | None = None,
               on_failure: Callable[[ChunkTask, str], None] | None = None) -> CorpusRun:
    """Analyse every pending chunk of `output` on `workers` Ray actors (see the module docstring).

    Cancelling (should_cancel, Ctrl-C) stops the workers, saves the manifest with what finished
    and raises `core.progress.Cancelled` (or the KeyboardInterrupt)."""
    import time

    settings = output.settings
    tasks = deque(output.pending(with_predictions=merge is not None))
    total = sum(output.video_of(t).chunks[t.chunk_index].frames for t in tasks)
    options = {"num_cpus": 1, "num_gpus": 1 if settings.device == "cuda" else 0, "max_restarts": 1,
               "max_task_retries": max(0, retries)}
    actors = [ChunkWorker.options(**options).remote(settings, fault_spec) for _ in range(min(workers, len(tasks)))]
    idle, running = list(actors), {}
    done = n_failed = n_run = 0
    names: set[str] = set()
    started = time.perf_counter()
    for ready in [actor.name.remote() for actor in actors]:  # each has loaded its model
        try:
            ray.get(ready)
        except ray.exceptions.RayActorError:
            pass  # a worker that cannot start fails its chunks below, with the reason
    startup_s = time.perf_counter() - started
    started = time.perf_counter()
    if progress is not None and total:
        progress(0, total)
    try:
        while tasks or running:
            while idle and tasks:
                actor = idle.pop()
                task = tasks.popleft()
                running[actor.analyze.remote(task)] = (actor, task)
            if not running:  # every worker died: what is left cannot run
                for task in tasks:
                    _failed(output, task, "no worker left (every worker process died)", on_failure)
                    n_failed += 1
                tasks.clear()
                break
            ready, _ = ray.wait(list(running), num_returns=1, timeout=WAIT_S)
            check_cancel(should_cancel)
            for ref in ready:
                actor, task = running.pop(ref)
                n_run += 1
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayActorError as err:
                    _failed(output, task, f"worker died: {_first_line(err)}", on_failure)
                    n_failed += 1
                    continue  # the actor is gone for good (it had its restart)
                except ray.exceptions.RayTaskError as err:
                    cause = err.cause if err.cause is not None else err
                    _failed(output, task, f"{type(cause).__name__}: {_first_line(cause)}", on_failure)
                    n_failed += 1
                    idle.append(actor)
                    continue
                idle.append(actor)
                if merge is not None:
                    merge.merge(result)  # before the chunk counts as done: a rerun redoes an unmerged one
                output.chunk_done(result)
                names.add(result.worker)
                done += output.video_of(task).chunks[task.chunk_index].frames
                if progress is not None:
                    progress(done, total)
    except BaseException:
        for actor in actors:
            ray.kill(actor)
        raise
    finally:
        output.save()
    for actor in actors:
        ray.kill(actor)
    return CorpusRun(n_chunks_run=n_run, n_chunks_failed=n_failed, n_frames=done,
                     seconds=time.perf_counter() - started, workers=tuple(sorted(names)), startup_s=startup_s)


def _token_mode_if_token() -> None:
    """Join in token-authentication mode when this user has a Ray token.

    `ray start --head` (2.60) turns token authentication on when it finds a token, but
    `ray.init(address=...)` sends the token only in token mode, so the driver is refused
    (InvalidAuthToken) and retries for minutes. Ray's own CLI makes this same call before it
    connects; it is private API, hence the pinned Ray, and a missing one changes nothing."""
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available)
    except ImportError:
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


def _failed(output: CorpusOutput, task: ChunkTask, error: str, on_failure) -> None:
    output.chunk_failed(task, error)
    if on_failure is not None:
        on_failure(task, error)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__

