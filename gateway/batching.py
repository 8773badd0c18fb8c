"""The local model's workers and the policy's batching window, in simulated time.

Requests whose chain starts on the local model queue for `[traffic] local_workers` workers (0, the
default: a worker for every request, so nothing queues). With a `batching` section in the routing
policy a free worker does not take one request but a batch whose size adapts to the queue:

- when at least `max_batch_size` requests are queued it takes that many at once, without waiting;
- otherwise it waits until the batch fills or the oldest queued request has waited `max_wait_ms`,
  and takes everything queued by then (`flush_size`).

A batch of n takes one draw of the local model's latency times `1 + BATCH_COST * (n - 1)`, so a
batch of 8 costs about twice a single request: deep queues are served several times faster, while a
shallow queue pays up to `max_wait_ms` more latency. A request that would wait past its hop's
timeout leaves the queue (it times out there and falls back) without taking a worker.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

BATCH_COST = 0.15


def flush_size(queued: int, max_batch_size: int) -> int:
    """How many requests a batch takes when `queued` are waiting: all of them, at most the
    maximum, at least one."""
    return max(1, min(max_batch_size, queued))


def flush_wait_ms(queued: int, max_batch_size: int, max_wait_ms: float) -> float:
    """How long a free worker waits for a batch to fill: not at all once the queue holds a full
    batch, else up to the window (counted from the oldest queued request's arrival)."""
    return 0.0 if queued >= max_batch_size else max_wait_ms


def batch_ms(single_ms: float, size: int) -> float:
    return single_ms * (1.0 + BATCH_COST * (size - 1))


@dataclass(frozen=True)
class Slot:
    """One request's time at the local model: waiting in the queue, then its batch's inference
    (`batch` = 0 when it left the queue at its timeout without being served)."""

    queue_ms: float
    inference_ms: float
    batch: int


class LocalQueue:
    """Workers of the local model; their busy-until times carry over from tick to tick."""

    def __init__(self, workers: int) -> None:
        self.free_at = [0.0] * workers
        self.oldest_wait_ms = 0.0  # the longest queue wait of the last run (reported as request age)
        self.batches: list[int] = []  # sizes of the batches of the last run

    def run(
        self,
        arrivals: Sequence[float],
        timeouts_ms: Sequence[float],
        draw_ms: Callable[[], float],
        *,
        max_batch_size: int = 1,
        max_wait_ms: float = 0.0,
    ) -> list[Slot]:
        """Slots for requests arriving at `arrivals` (seconds, ascending), each with its hop timeout."""
        slots: list[Slot | None] = [None] * len(arrivals)
        self.batches, self.oldest_wait_ms = [], 0.0
        i, n = 0, len(arrivals)
        while i < n:
            worker = min(range(len(self.free_at)), key=self.free_at.__getitem__)
            free = max(self.free_at[worker], arrivals[i])
            queued = sum(1 for k in range(i, n) if arrivals[k] <= free)
            wait_s = flush_wait_ms(queued, max_batch_size, max_wait_ms) / 1000.0
            start = max(free, arrivals[i] + wait_s) if wait_s else free
            last_needed = i + max_batch_size - 1
            if wait_s and last_needed < n and arrivals[last_needed] < start:
                start = max(free, arrivals[last_needed])  # the batch filled before the window closed
            queued = sum(1 for k in range(i, n) if arrivals[k] <= start)
            members = list(range(i, i + flush_size(queued, max_batch_size)))
            i = members[-1] + 1
            served = []
            for k in members:
                waited_ms = (start - arrivals[k]) * 1000.0
                self.oldest_wait_ms = max(self.oldest_wait_ms, waited_ms)
                if waited_ms >= timeouts_ms[k]:
                    slots[k] = Slot(timeouts_ms[k], 0.0, 0)
                else:
                    served.append((k, waited_ms))
            if not served:
                continue
            inference = batch_ms(draw_ms(), len(served))
            self.free_at[worker] = start + inference / 1000.0
            self.batches.append(len(served))
            for k, waited_ms in served:
                slots[k] = Slot(waited_ms, inference, len(served))
        return [slot for slot in slots if slot is not None]
