"""Prepare the next batches while the current one trains: a background thread, pinned memory.

:func:`prefetch` wraps an iterator of CPU batches. A thread pulls each item, runs the
CPU-side preparation on it (``prepare``: compaction, ...), and puts it on ``device``:
on CUDA it pins the tensors and copies them with ``non_blocking=True`` on a side stream,
so the host-to-device copy of batch ``k+1`` overlaps the compute of batch ``k``; the
consumer's stream waits for that copy (an event, not a host synchronisation) before it
uses the tensors. At most ``depth`` prepared items are held.

Items may be tuples whose first element is the batch dict (e.g. ``(batch, epoch,
loader_state)``): the other elements are passed through untouched, which lets a training
loop checkpoint the loader state *of the batch it consumed*, not of the batches read
ahead. Errors raised while reading or preparing are re-raised in the consumer.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

import torch

__all__ = ["prefetch", "to_device"]

Batch = dict[str, Any]

_DONE = object()


def to_device(batch: Batch, device: torch.device, pin: bool = False) -> Batch:
    """Tensors of ``batch`` on ``device`` (pinned first when ``pin``; non-blocking on CUDA)."""
    cuda = device.type == "cuda"
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            if pin and cuda and value.device.type == "cpu" and not value.is_pinned():
                value = value.pin_memory()
            value = value.to(device, non_blocking=cuda)
        out[key] = value
    return out


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error


def prefetch(
    items: Iterator[Any],
    device: torch.device,
    prepare: Callable[[Batch], Batch] | None = None,
    depth: int = 2,
) -> Iterator[Any]:
    """Yield the items of ``items`` prepared and on ``device``, read ``depth`` ahead."""
    if depth < 1:
        raise ValueError(f"prefetch depth must be >= 1, not {depth}")
    cuda = device.type == "cuda"
    side = torch.cuda.Stream(device) if cuda else None
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(value: Any) -> bool:
        while not stop.is_set():
            try:
                ready.put(value, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                batch, rest = (item[0], item[1:]) if isinstance(item, tuple) else (item, None)
                if prepare is not None:
                    batch = prepare(batch)
                event = None
                if side is not None:
                    with torch.cuda.stream(side):
                        batch = to_device(batch, device, pin=True)
                        event = torch.cuda.Event()
                        event.record(side)
                else:
                    batch = to_device(batch, device)
                if not put((batch, rest, event)):
                    return
        except BaseException as err:  # handed to the consumer, raised there
            put(_Failure(err))
            return
        put(_DONE)

    thread = threading.Thread(target=produce, name="jetfm-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            got = ready.get()
            if got is _DONE:
                return
            if isinstance(got, _Failure):
                raise got.error
            batch, rest, event = got
            if event is not None:
                current = torch.cuda.current_stream(device)
                current.wait_event(event)
                for value in batch.values():
                    if isinstance(value, torch.Tensor):
                        value.record_stream(current)
            yield batch if rest is None else (batch, *rest)
    finally:
        stop.set()
        thread.join(timeout=5.0)
