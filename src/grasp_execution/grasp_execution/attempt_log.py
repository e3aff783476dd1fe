"""The executor's record of its grasp attempts: running success over a window (seed IV-C's G) and, when given a
path, the attempt log every producer shares (grasp_core.attempts: `<path>.csv` and `<path>.jsonl`)."""
from __future__ import annotations

from pathlib import Path

from grasp_core.attempts import AttemptRecord, AttemptWriter
from grasp_core.metrics import windowed_success

__all__ = ["AttemptLog", "AttemptRecord"]


class AttemptLog:
    """Keeps the outcomes for G = successes / window and appends each attempt to the log at `csv_path` (if given;
    continued when it exists)."""

    def __init__(self, window: int = 100, csv_path: str | Path | None = None):
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = int(window)
        self.outcomes: list[int] = []
        self.csv_path = Path(csv_path) if csv_path else None
        self._writer: AttemptWriter | None = None

    def add(self, record: AttemptRecord) -> float:
        """Record one attempt; returns G over the last `window` attempts."""
        self.outcomes.append(1 if record.reward > 0.5 else 0)
        if self.csv_path is not None:
            if self._writer is None:  # opened at the first attempt: no empty files from a node that never grasped
                self._writer = AttemptWriter(self.csv_path, append=True)
            self._writer.write(record)
        return self.window_success()

    def window_success(self) -> float:
        """G = S / M over the last M = window attempts (missing attempts count as failures, as in the seed)."""
        return float(windowed_success(self.outcomes, self.window, partial="fixed")[-1]) if self.outcomes else 0.0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
