"""Approximate-time pairing of the colour and aligned-depth streams by their header stamps.

message_filters is not installable beside the PyPI ROS wheels, and two streams need only this much: keep the last
few messages of each stream; when one arrives, pair it with the other stream's message closest in time if they are
at most `max_skew` apart, and forget everything older than the pair (it can never be paired better).
RealSense with `enable_sync` stamps both streams identically; without it they are up to half a frame apart.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

STREAMS = ("color", "depth")


@dataclass(frozen=True)
class Pair:
    color: Any
    depth: Any
    skew_ns: int  # |color stamp - depth stamp|


class StampPairer:
    """Pairs colour and depth messages given with their stamps in integer nanoseconds."""

    def __init__(self, max_skew: float, queue_size: int = 10):
        if not max_skew >= 0:
            raise ValueError(f"max_skew must be >= 0 seconds, got {max_skew}")
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self.max_skew_ns = int(round(max_skew * 1e9))
        self.queue_size = int(queue_size)
        self._queues: dict[str, deque] = {s: deque() for s in STREAMS}
        self.unpaired = 0  # messages dropped without a partner (queue overflow, superseded, time jumps)

    def add(self, stream: str, stamp_ns: int, msg) -> Pair | None:
        """Offer one message; returns the pair it completes, if any."""
        if stream not in self._queues:
            raise ValueError(f"unknown stream {stream!r}; expected one of {STREAMS}")
        own, other = self._queues[stream], self._queues[STREAMS[1 - STREAMS.index(stream)]]
        if own and stamp_ns < own[-1][0]:
            # Time went backwards (a bag looped, the camera restarted): start over.
            self.unpaired += len(own) + len(other)
            own.clear()
            other.clear()
        best = min(other, key=lambda item: abs(item[0] - stamp_ns), default=None)
        if best is not None and abs(best[0] - stamp_ns) <= self.max_skew_ns:
            # Everything older than the pair in either queue is superseded.
            cutoff = min(best[0], stamp_ns)
            self.unpaired += self._drop_through(other, best[0]) - 1
            self.unpaired += self._drop_through(own, cutoff, inclusive=False)
            color, depth = (msg, best[1]) if stream == "color" else (best[1], msg)
            return Pair(color, depth, abs(best[0] - stamp_ns))
        own.append((stamp_ns, msg))
        while len(own) > self.queue_size:
            own.popleft()
            self.unpaired += 1
        return None

    @staticmethod
    def _drop_through(queue: deque, stamp_ns: int, inclusive: bool = True) -> int:
        dropped = 0
        while queue and (queue[0][0] < stamp_ns or (inclusive and queue[0][0] == stamp_ns)):
            queue.popleft()
            dropped += 1
        return dropped

    def pending(self) -> dict[str, int]:
        return {s: len(q) for s, q in self._queues.items()}
