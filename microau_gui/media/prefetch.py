"""Reading ahead: run any frame (or batch) iterator in a background thread, a bounded queue ahead.

Owns: `prefetch`. May import only the standard library. Spotting uses it to decode while the
flow runs, inference to decode and prepare the next batch while the network runs.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")


def prefetch(frames: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Decode `frames` in a background thread, at most `depth` frames ahead.

    Decoding (PyAV) and the consumer's work (optical flow, a network on a GPU) both release the
    GIL, so on two cores they overlap.
    The producer's exception is re-raised here; leaving the loop early stops the producer.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        iterator = iter(frames)
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        slots.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as err:  # handed to the consumer, which re-raises it
            slots.put(err)
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                slots.get(timeout=0.05)
            except queue.Empty:
                pass
        thread.join()
