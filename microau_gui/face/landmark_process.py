"""Static-mode Face Mesh in a child process, so it runs beside Python work instead of taking turns.

Owns: `LandmarkProcess`, `LandmarkWorkerDied`. May import core, numpy and this package's
`landmarks` (the child builds its own `FaceMesh`); the standard library's multiprocessing; no
torch, no Qt.

Why (issue #18, dense traces): MediaPipe's Python binding holds the GIL while its graph runs.
Measured on a 2-core AMD EPYC (AVX2): 120 detections (1.03 s) beside a pure-Python loop (0.20 s)
took 1.29 s on two threads, the sum, not the maximum. So in a threaded analysis the landmark
stage (about 8 ms a frame) and every Python stage (pair preparation, batching, rows) ran one at
a time, and two cores sat 20 % idle at about 58 frames/s. A child process has its own GIL.

How (our specification):
- One child, started with the "spawn" method (a fresh interpreter: the parent's torch, ONNX
  Runtime and decoder threads are not forked mid-flight), runs `FaceMesh(static=True)`. Static
  mode makes a frame's landmarks a pure function of its pixels, so they are exactly those the
  parent would compute (`tests/test_analysis_pipeline.py` compares the rows).
- Frames travel through a shared-memory ring of `slots` frames; the pipe carries only the slot
  number and the shape one way and the `Landmarks` (a few kB) back. An executor's hand-off
  threads were tried first: they need the parent's GIL for every frame, so a busy parent
  starved the child (30 frames/s instead of 60).
- `put(rgb)` copies a frame into the next free slot (waiting for the oldest result when all
  are in flight is the caller's job: `in_flight` < `slots`); `get()` returns the oldest
  frame's landmarks. Results come back in the order frames went in.
- A child that dies (killed, out of memory) makes `put`/`get` raise `LandmarkWorkerDied`, one
  line; so does a ring that cannot be made (no room in /dev/shm) as a plain `UserError`. When
  the parent dies, the child's pipe closes and it exits. `close()` stops the child and frees
  the ring; it is idempotent.
"""

from __future__ import annotations

import multiprocessing
from multiprocessing.shared_memory import SharedMemory

import numpy as np

from microau_gui.core.errors import UserError
from microau_gui.face.landmarks import FaceMesh, Landmarks

# The third cause is ours to name: a spawn child imports the parent's main module again, so a
# user's own script that analyses without a main guard re-runs itself in the child, which dies.
_DIED = ("the face-landmark process ended unexpectedly (killed, or out of memory; a script of "
         "your own that analyses needs `if __name__ == \"__main__\":`); run the analysis again, "
         "or with fewer programs open")


class LandmarkWorkerDied(UserError):
    """The landmark child process ended while frames were pending."""


def _serve(conn) -> None:
    """The child: detect every frame the parent names until it sends None or goes away."""
    mesh = FaceMesh(static=True)
    ring: SharedMemory | None = None
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:  # the parent is gone
                return
            if message is None:
                return
            name, offset, shape = message
            if ring is None or ring.name != name:
                if ring is not None:
                    ring.close()
                ring = SharedMemory(name=name)
            frame = np.ndarray(shape, np.uint8, buffer=ring.buf, offset=offset)
            conn.send(mesh.detect(frame))
            del frame
    finally:
        mesh.close()
        if ring is not None:
            ring.close()


class LandmarkProcess:
    """A child process that detects static-mode landmarks (see the module docstring)."""

    def __init__(self, slots: int = 8) -> None:
        self.slots = slots
        context = multiprocessing.get_context("spawn")
        self._conn, child_end = context.Pipe()
        self._child = context.Process(target=_serve, args=(child_end,), daemon=True,
                                      name="microau-landmarks")
        self._child.start()
        child_end.close()  # so a dead child reads as EOF here
        self._ring: SharedMemory | None = None
        self._slot_bytes = 0
        self._next = 0  # the slot the next frame goes into
        self.in_flight = 0

    def put(self, rgb: np.ndarray) -> None:
        """Send one (H, W, 3) uint8 frame; at most `slots` may be in flight."""
        if self.in_flight >= self.slots:
            raise RuntimeError("every slot is in flight; get() the oldest result first")
        rgb = np.ascontiguousarray(rgb, np.uint8)
        if self._ring is None or rgb.nbytes > self._slot_bytes:
            if self.in_flight:
                raise RuntimeError("a larger frame while others are in flight")
            self._new_ring(rgb.nbytes)
        offset = self._next * self._slot_bytes
        np.ndarray(rgb.shape, np.uint8, buffer=self._ring.buf, offset=offset)[...] = rgb
        try:
            self._conn.send((self._ring.name, offset, rgb.shape))
        except (BrokenPipeError, ConnectionResetError, OSError):
            raise LandmarkWorkerDied(_DIED) from None
        self._next = (self._next + 1) % self.slots
        self.in_flight += 1

    def get(self) -> Landmarks:
        """The landmarks of the oldest frame in flight."""
        if not self.in_flight:
            raise RuntimeError("no frame in flight")
        try:
            found = self._conn.recv()
        except (EOFError, ConnectionResetError, OSError):
            raise LandmarkWorkerDied(_DIED) from None
        self.in_flight -= 1
        return found

    def _new_ring(self, frame_bytes: int) -> None:
        if self._ring is not None:
            self._ring.close()
            self._ring.unlink()
        self._slot_bytes = frame_bytes
        try:
            self._ring = SharedMemory(create=True, size=frame_bytes * self.slots)
        except OSError as err:  # /dev/shm missing or full (some containers cap it at 64 MB)
            raise UserError(f"no shared memory for the face-landmark process ({err.strerror or err}); "
                            "free space in /dev/shm (see df /dev/shm) and run it again") from None
        self._next = 0

    def close(self) -> None:
        if self._child is None:
            return
        try:
            self._conn.send(None)
        except OSError:
            pass
        self._child.join(timeout=5)
        if self._child.is_alive():
            self._child.kill()
            self._child.join()
        self._conn.close()
        self._child = None
        if self._ring is not None:
            self._ring.close()
            self._ring.unlink()
            self._ring = None

    def __enter__(self) -> "LandmarkProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
